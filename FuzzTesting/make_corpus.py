#!/usr/bin/env python3
"""Writes the seed corpora (Corpus/<Target>/) from the project's tests: the requests of
Tests/HTTPWireTests and Tests/HTTPServerTests, the PCCRC vectors of Tests/PCCRCTests/Vectors, the
route table of Sources/PeerDistAPI and request bodies like the API tests'. Run from anywhere;
re-running rewrites the seed-* files only (inputs that libFuzzer added are kept)."""
import gzip, hashlib, json, os, re, struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def unescape(s):
    s = re.sub(r'\\u\{([0-9a-fA-F]+)\}', lambda m: chr(int(m.group(1), 16)), s)
    return s.replace('\\r', '\r').replace('\\n', '\n').replace('\\t', '\t').replace('\\"', '"').replace('\\\\', '\\')


def swift_literals(path, pattern):
    with open(os.path.join(ROOT, path)) as f:
        text = f.read()
    return [unescape(m) for m in re.findall(pattern, text)]


def write(target, seeds):
    d = os.path.join(HERE, 'Corpus', target)
    os.makedirs(d, exist_ok=True)
    for old in os.listdir(d):
        if old.startswith('seed-'):
            os.remove(os.path.join(d, old))
    for data in seeds:
        if isinstance(data, str):
            data = data.encode('utf-8', 'surrogateescape')
        name = 'seed-' + hashlib.sha1(data).hexdigest()[:16]
        with open(os.path.join(d, name), 'wb') as f:
            f.write(data)


# --- FuzzRequestHead: [limits byte][split byte] + request bytes
requests = swift_literals('Tests/HTTPWireTests/RequestParsingTests.swift', r'input: "((?:[^"\\]|\\.)*)"')
for path in ['Tests/HTTPServerTests/ConnectionTests.swift', 'Tests/HTTPServerTests/LimitTests.swift',
             'Tests/HTTPServerTests/CompressionTests.swift', 'Tests/HTTPServerTests/DrainTests.swift']:
    if os.path.exists(os.path.join(ROOT, path)):
        requests += [r for r in swift_literals(path, r'"((?:[^"\\]|\\.)*HTTP/1\.[01](?:[^"\\]|\\.)*)"') if '\\(' not in r]
requests += [
    'GET /openapi.yaml HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip;q=0.5, br;q=1.0, *;q=0\r\n\r\n',
    'GET /x HTTP/1.1\r\nHost: [::1]:8080\r\nX-Request-Id: abc-123\r\nPrefer: wait=5, respond-async\r\n\r\n',
    'POST /instances HTTP/1.1\r\nHost: a\r\nContent-Type: application/json; charset="utf-8"\r\nContent-Length: 2\r\n\r\n{}',
    'GET http://a:80/instances/h/content/aGk/operations?state=pending&pageSize=10 HTTP/1.1\r\nHost: a:80\r\n\r\n',
    'PUT /upload HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nConnection: keep-alive, Upgrade\r\nContent-Length: 0\r\n\r\n',
]
seeds = []
for i, r in enumerate(requests):
    seeds.append(bytes([0x00, 0x00]) + r.encode('latin-1', 'replace'))
    seeds.append(bytes([0x80, (i * 37) & 0xFF]) + r.encode('latin-1', 'replace'))
write('FuzzRequestHead', seeds)

# --- FuzzChunked: [trailer-limit byte][split byte] + body
bodies = ['5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n', '0\r\n\r\n',
          '4\r\nabcd\r\n3;x=y\r\nefg\r\n0\r\nT: v\r\n\r\nGET / HTTP/1.1\r\n', 'a\r\n0123456789\r\n0\r\n\r\n',
          'FF\r\n' + 'z' * 255 + '\r\n0\r\n\r\n', '1 ; a="b"\r\nx\r\n0\r\nA: 1\r\nB: 2\r\n\r\n']
write('FuzzChunked', [bytes([c, s]) + b.encode() for b in bodies for c, s in [(0, 0), (0x80, 0x3A)]])

# --- FuzzRouter: "METHOD path"
routes = []
for name in os.listdir(os.path.join(ROOT, 'Sources/PeerDistAPI')):
    with open(os.path.join(ROOT, 'Sources/PeerDistAPI', name)) as f:
        routes += re.findall(r'\.(?:sync|async|inlineFirst)\(\.([a-z]+), "([^"]+)"', f.read())
values = {'h': 'inst_1', 'id': 'aGVsbG8', 's': 'str%5F1', 'p': 'port_1', 'c': 'ci_1', 'op': 'op%2Done'}
seeds = []
for method, template in sorted(routes):
    path = re.sub(r'\{(\w+)\}', lambda m: values[m.group(1)], template)
    seeds += [f'{method.upper()} {path}', f'HEAD {path}', f'PATCH {path}/']
write('FuzzRouter', seeds)

# --- FuzzRouteParameters: requests separated by "\n--\n"
J = 'Content-Type: application/json\n'
startup = 'POST /instances\n' + J + '\n{"version":2}'
seqs = [
    startup,
    startup + '\n--\nGET /instances/$h\n\n--\nGET /instances/$h/status?since=available&timeoutMs=1\n\n--\nDELETE /instances/$h\n',
    startup + '\n--\nPOST /instances/$h/ports\n\n--\nPOST /instances/$h/content/aGVsbG8/streams\n' + J +
    '\n{"contentLength":5,"version":1,"hashAlgorithm":"SHA384","port":"$p","key":7}\n--\n'
    'POST /instances/$h/content/aGVsbG8/streams/$s/data?op=append.1\nContent-Type: application/octet-stream\nPrefer: wait=1\n\nhello'
    '\n--\nPOST /instances/$h/content/aGVsbG8/streams/$s/complete?op=done\nPrefer: wait=1\n\n'
    '\n--\nGET /instances/$h/ports/$p/completions?max=4&timeoutMs=1\n\n--\nGET /instances/$h/content/aGVsbG8\n\n'
    '--\nGET /instances/$h/content/aGVsbG8/contentinfo?version=2\n\n--\nGET /instances/$h/operations?state=completed&pageSize=2\n',
    startup + '\n--\nPOST /instances/$h/content/aGk/streams\n' + J + '\n{"contentLength":2,"version":2}\n--\n'
    'POST /instances/$h/content/aGk/streams/$s/data\n\nhi\n--\nGET /instances/$h/content/aGk/operations/$o?timeoutMs=1\n\n'
    '--\nGET /instances/$h/content/aGk/operations/$o/buffer\n\n--\nDELETE /instances/$h/content/aGk/operations/$o\n\n'
    '--\nPOST /instances/$h/content/aGk/streams/$s/complete\n\n--\nPOST /instances/$h/content/aGk/contentinfo\n' + J +
    '\n{"offset":0,"length":2,"minVersion":1,"maxVersion":2}\n--\nPOST /instances/$h/content/aGk/contentinfo/$c/reads?maxBytes=100\nPrefer: wait=1\n\n'
    '--\nDELETE /instances/$h/content/aGk/contentinfo/$c\n\n--\nDELETE /instances/$h/content/aGk/streams/$s\n\n--\nDELETE /instances/$h/content/aGk\n',
    'GET /admin/policy\nAuthorization: Bearer fuzz-admin-token\n\n--\nPUT /admin/policy\nAuthorization: Bearer fuzz-admin-token\n' + J +
    '\n{"enabled":false}\n--\n' + startup + '\n--\nPUT /admin/service\nAuthorization: Bearer fuzz-admin-token\n' + J +
    '\n{"available":false,"retryAfterSeconds":3}\n--\nPOST /instances/$h/ports\n\n--\nGET /admin/service\nAuthorization: Bearer nope\n',
    'PUT /admin/faults\nAuthorization: Bearer fuzz-admin-token\n' + J + '\n{"completionDelayMs":5,"kinds":["append","complete"]}\n--\n'
    'GET /admin/faults\nAuthorization: Bearer fuzz-admin-token\n',
    'GET /healthz\n\n--\nGET /readyz\n\n--\nGET /openapi.yaml\nAccept-Encoding: gzip\n\n--\nGET /metrics\n\n--\nPOST /nowhere\n\n--\nDELETE /healthz\n',
    'POST /instances\nContent-Type: text/plain\n\n{"version":1}\n--\nPOST /instances\n' + J + '\n{"version":1,}\n--\nPOST /instances\n' + J + '\n{"version":1e400}',
]
write('FuzzRouteParameters', seqs)

# --- FuzzPCCRC: [mode] + content information (even mode) or [mode][offset u32][length u32] + content
with open(os.path.join(ROOT, 'Tests/PCCRCTests/Vectors/pccrc.json')) as f:
    vectors = json.load(f)
hexes = []
def collect(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k.lower().endswith('hex') and isinstance(v, str) and len(v) > 40 and len(v) % 2 == 0:
                try:
                    hexes.append(bytes.fromhex(v))
                except ValueError:
                    pass
            collect(v)
    elif isinstance(node, list):
        for v in node:
            collect(v)
collect(vectors)
seeds = [bytes([0]) + h for h in hexes]
content = b'The quick brown fox jumps over the lazy dog. ' * 20
for mode in [1, 3, 5, 9]:
    seeds.append(bytes([mode]) + struct.pack('<II', 0, 0) + content)
    seeds.append(bytes([mode]) + struct.pack('<II', 100, 300) + content)
    seeds.append(bytes([mode]) + struct.pack('<II', 0, 0))
write('FuzzPCCRC', seeds)

# --- FuzzGzip: [limit byte] + gzip member / content
samples = [b'{"code":87,"error":"ERROR_INVALID_PARAMETER"}', b'a' * 5000, bytes(range(256)), b'']
seeds = []
for s in samples:
    seeds.append(bytes([0x03]) + gzip.compress(s, mtime=0))
    seeds.append(bytes([0xFF]) + gzip.compress(s, compresslevel=1, mtime=0))
    seeds.append(bytes([0x00]) + s)
write('FuzzGzip', seeds)

# --- FuzzTokenTable: tokens files
write('FuzzTokenTable', [
    b'alice alice-token-0123456789\nbob bob-token-0123456789ab\n',
    b'# comment only\n\n',
    b'carol\tY2Fyb2wtdG9rZW4tMDEyMzQ1Njc4OQ==\r\n# trailing\r\n',
    b'alice alice-token-0123456789 # note\nalice other-token-0123456789\n',
    b'a b c\n',
    b'x.y_z~w- ab/cd+ef-0123456789==\n',
])
