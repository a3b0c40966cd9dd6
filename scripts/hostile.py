#!/usr/bin/env python3
"""Hostile-input suite against a live peerdistd.

  python3 scripts/hostile.py                        # seed 1, 3000 cases
  python3 scripts/hostile.py --seed 7 --cases 20000
  python3 scripts/hostile.py --binary .build/debug/peerdistd --only 1234   # replay one case

Starts peerdistd itself (port 0, a temporary data directory, short timeouts, the default log
level), makes real handles (an instance, a port, a published content, an open stream, a
content-information handle, ended operations), then sends a seeded series of requests that are
malformed at every layer: request line and header bytes (non-ASCII, NUL, CR/LF games), every
header the server interprets with absurd values, every query parameter of every route, paths
(encoded slashes, dot segments, depth, absolute-form, OPTIONS *, CONNECT), framing
(Content-Length and Transfer-Encoding games, pipelining) and JSON bodies (deep nesting, 1e400,
2^64, duplicate keys, wrong types for every field, invalid UTF-8, BOM, trailing garbage).

After every request it checks that
  1. the process is alive;
  2. GET /healthz on a fresh connection answers 200 within 1 s;
  3. every answer is well formed: a 1xx/2xx/3xx, or a 4xx/5xx with Content-Type
     application/problem+json whose body has an integer `code` and a string `error`; a 500 is a
     failure; the server may instead close the connection, but only on an answer boundary
     (no partial garbage);
  4. a complete request is answered before the head timeout (never held until it);
  5. the process's thread count stays within its baseline plus a small margin.
At the end it checks that no request-supplied bytes broke a log line apart.
On a failure it prints the seed, the case number and the exact request bytes. Exit status 1
when anything failed. Uses only the Python standard library.
"""
import argparse, json, os, random, re, shutil, signal, socket, subprocess, sys, tempfile, time, zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAD_TIMEOUT = 3          # --header-timeout given to the server
BODY_TIMEOUT = 3          # --body-timeout
MAX_WAIT_MS = 200         # --max-wait: long-polls end quickly
THREAD_MARGIN = 8
MARKER = "HOSTILEINJECT"  # appears in a log line's start only if a request broke the log apart
STATUSES = {}             # first answer's status (or "closed") -> cases


# ---------------------------------------------------------------- the server

class Server:
    def __init__(self, binary, extra):
        self.tmp = tempfile.mkdtemp(prefix="peerdist-hostile-")
        self.errpath = os.path.join(self.tmp, "stderr.log")
        self.err = open(self.errpath, "wb")
        env = dict(os.environ, SWIFT_BACKTRACE="enable=no")
        self.proc = subprocess.Popen(
            [binary, "--port", "0", "--data-dir", os.path.join(self.tmp, "data"),
             "--header-timeout", str(HEAD_TIMEOUT), "--body-timeout", str(BODY_TIMEOUT),
             "--max-wait", str(MAX_WAIT_MS), "--retention", "60"] + extra,
            stdout=subprocess.PIPE, stderr=self.err, env=env)
        line = self.proc.stdout.readline().decode(errors="replace").strip()
        m = re.match(r"listening on (.*):(\d+)$", line)
        if not m:
            raise SystemExit(f"peerdistd did not start: {line!r}\n{self.stderr_tail()}")
        self.host, self.port = m.group(1).strip("[]"), int(m.group(2))

    def alive(self):
        return self.proc.poll() is None

    def threads(self):
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("Threads:"):
                        return int(line.split()[1])
        except OSError:
            return -1
        return -1

    def stderr_tail(self, n=15):
        self.err.flush()
        try:
            with open(self.errpath, "rb") as f:
                lines = f.read().splitlines()[-n:]
            return "\n".join(l.decode(errors="replace") for l in lines)
        except OSError:
            return ""

    def stop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


# ---------------------------------------------------------------- a strict HTTP/1.1 response reader

class Garbage(Exception):
    pass


def read_responses(sock, deadline, head_request, expect_more):
    """Reads answers until the server closes, or until the first final answer when expect_more is
    False. Returns (answers, closed, timed_out, leftover). An answer is (status, headers, body)."""
    buf = b""
    answers = []
    closed = False
    timed_out = False

    def fill():
        nonlocal buf, closed, timed_out
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            return False
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            timed_out = True
            return False
        except ConnectionResetError:
            closed = True
            return False
        except OSError:
            closed = True
            return False
        if not chunk:
            closed = True
            return False
        buf += chunk
        return True

    while True:
        while b"\r\n\r\n" not in buf:
            if len(buf) > 1 << 20:
                raise Garbage("answer head larger than 1 MiB")
            if not fill():
                return answers, closed, timed_out, buf
        head, rest = buf.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        m = re.match(rb"HTTP/1\.[01] (\d{3}) [\x20-\x7e\x80-\xff]*$", lines[0])
        if not m:
            raise Garbage(f"bad status line {lines[0][:200]!r}")
        status = int(m.group(1))
        headers = {}
        for l in lines[1:]:
            if b":" not in l:
                raise Garbage(f"bad header line {l[:200]!r}")
            k, v = l.split(b":", 1)
            if not re.match(rb"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", k):
                raise Garbage(f"bad header name {k[:200]!r}")
            if re.search(rb"[\x00-\x08\x0a-\x1f\x7f]", v):
                raise Garbage(f"control byte in header value {l[:200]!r}")
            headers.setdefault(k.decode().lower(), []).append(v.strip().decode("latin-1"))
        buf = rest
        body = b""
        if status < 200:
            if status == 101:
                answers.append((status, headers, b""))
                return answers, False, False, b""
            continue  # interim
        if head_request or status in (204, 304):
            pass
        elif "transfer-encoding" in headers:
            if [t.strip().lower() for t in ",".join(headers["transfer-encoding"]).split(",")] != ["chunked"]:
                raise Garbage(f"answer Transfer-Encoding {headers['transfer-encoding']!r}")
            while True:
                while b"\r\n" not in buf:
                    if not fill():
                        raise Garbage("connection ended inside a chunked answer")
                size_line, buf = buf.split(b"\r\n", 1)
                try:
                    size = int(size_line.split(b";")[0], 16)
                except ValueError:
                    raise Garbage(f"bad chunk size {size_line[:100]!r}")
                while len(buf) < size + 2:
                    if not fill():
                        raise Garbage("connection ended inside a chunk")
                if buf[size:size + 2] != b"\r\n":
                    raise Garbage("chunk not followed by CRLF")
                body += buf[:size]
                buf = buf[size + 2:]
                if size == 0:
                    break
        elif "content-length" in headers:
            if len(headers["content-length"]) != 1 or not headers["content-length"][0].isdigit():
                raise Garbage(f"answer Content-Length {headers['content-length']!r}")
            n = int(headers["content-length"][0])
            while len(buf) < n:
                if not fill():
                    raise Garbage(f"connection ended after {len(buf)} of {n} body bytes")
            body, buf = buf[:n], buf[n:]
        else:
            while fill():
                pass
            body, buf = buf, b""
        answers.append((status, headers, body))
        if not expect_more and not buf:
            return answers, closed, timed_out, buf
        if "close" in ",".join(headers.get("connection", [])).lower() and buf == b"":
            # the server said it closes: it must, with nothing after
            while fill():
                pass
            return answers, True, timed_out, buf


def check_answer(status, headers, body, is_head):
    """Returns None when the answer is acceptable, else why not."""
    if status == 500:
        return f"500 answer: {body[:300]!r}"
    if status < 400:
        return None
    if is_head:
        return None if "problem+json" in ",".join(headers.get("content-type", [])) else f"{status} answer to HEAD without problem+json type"
    ctype = ",".join(headers.get("content-type", []))
    if ctype.split(";")[0].strip().lower() != "application/problem+json":
        return f"{status} answer with Content-Type {ctype!r}, not application/problem+json"
    enc = ",".join(headers.get("content-encoding", [])).strip().lower()
    if enc == "gzip":
        try:
            body = zlib.decompress(body, 16 + zlib.MAX_WBITS)
        except zlib.error as e:
            return f"{status} answer with a broken gzip body ({e})"
    elif enc not in ("", "identity"):
        return f"{status} answer with Content-Encoding {enc!r}"
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return f"{status} answer whose body is not JSON: {body[:300]!r}"
    if not isinstance(doc, dict):
        return f"{status} problem body is not an object: {body[:300]!r}"
    if type(doc.get("code")) is not int:
        return f"{status} problem without an integer code: {body[:300]!r}"
    if not isinstance(doc.get("error"), str):
        return f"{status} problem without a string error: {body[:300]!r}"
    if doc.get("status") not in (None, status):
        return f"{status} problem says status {doc.get('status')!r}"
    if status in (503, 429) and "retry-after" not in headers:
        return f"{status} without Retry-After"
    if status == 405 and "allow" not in headers:
        return "405 without Allow"
    return None


# ---------------------------------------------------------------- plain requests for setup

def simple(server, method, path, body=None, headers=None, timeout=5):
    s = socket.create_connection((server.host, server.port), timeout=timeout)
    try:
        h = {"Host": "127.0.0.1", "Connection": "close"}
        if body is not None:
            h["Content-Type"] = "application/json" if isinstance(body, (dict, list)) else "application/octet-stream"
            body = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
            h["Content-Length"] = str(len(body))
        h.update(headers or {})
        raw = f"{method} {path} HTTP/1.1\r\n".encode() + b"".join(f"{k}: {v}\r\n".encode() for k, v in h.items()) + b"\r\n" + (body or b"")
        s.sendall(raw)
        answers, _, _, _ = read_responses(s, time.monotonic() + timeout, method == "HEAD", False)
        if not answers:
            raise RuntimeError(f"no answer to {method} {path}")
        status, hdrs, data = answers[0]
        try:
            return status, json.loads(data) if data and data[:1] in b"{[" else data
        except ValueError:
            return status, data
    finally:
        s.close()


def healthz(server, limit=1.0):
    t0 = time.monotonic()
    try:
        s = socket.create_connection((server.host, server.port), timeout=limit)
    except OSError as e:
        return f"cannot connect: {e}"
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        answers, _, timed_out, _ = read_responses(s, t0 + limit, False, False)
    except (Garbage, OSError) as e:
        return f"/healthz: {e}"
    finally:
        s.close()
    if not answers:
        return "/healthz not answered within 1 s" if timed_out else "/healthz: closed without an answer"
    if answers[0][0] != 200:
        return f"/healthz answered {answers[0][0]}"
    return None


def b64(data):
    import base64
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Handles:
    """Real handles, so that generated requests reach the deep routes."""

    def setup(self, server, n):
        simple(server, "PUT", "/admin/policy", {"enabled": True})
        simple(server, "PUT", "/admin/service", {"available": True})
        simple(server, "PUT", "/admin/faults", {})
        st, inst = simple(server, "POST", "/instances", {"version": 2})
        assert st == 201, (st, inst)
        self.h = inst["handle"]
        st, port = simple(server, "POST", f"/instances/{self.h}/ports")
        assert st == 201, (st, port)
        self.p = port["port"]
        self.id = b64(f"hostile-{n}".encode())
        st, strm = simple(server, "POST", f"/instances/{self.h}/content/{self.id}/streams", {"contentLength": 5, "version": 1})
        assert st == 201, (st, strm)
        s = strm["stream"]
        simple(server, "POST", f"/instances/{self.h}/content/{self.id}/streams/{s}/data?op=app-{n}", b"hello", {"Prefer": "wait=1"})
        simple(server, "POST", f"/instances/{self.h}/content/{self.id}/streams/{s}/complete?op=cmp-{n}", None, {"Prefer": "wait=1"})
        st, ci = simple(server, "POST", f"/instances/{self.h}/content/{self.id}/contentinfo", {"offset": 0, "length": 0})
        self.c = ci["contentInfo"] if st == 201 else "cinf_missing"
        st, rd = simple(server, "POST", f"/instances/{self.h}/content/{self.id}/contentinfo/{self.c}/reads?maxBytes=16", None, {"Prefer": "wait=1"})
        self.op_read = rd.get("id", "op_x") if isinstance(rd, dict) else "op_x"
        self.op = f"app-{n}"
        self.open_id = b64(f"hostile-open-{n}".encode())
        st, strm = simple(server, "POST", f"/instances/{self.h}/content/{self.open_id}/streams", {"contentLength": 0})
        self.s = strm["stream"] if st == 201 else "strm_missing"


# ---------------------------------------------------------------- the generator

JUNK_SEGMENTS = [
    "", ".", "..", "%2e%2e", "%2E.", "%2f", "%2F..%2F", "a%2Fb", "%00", "%C0%AF", "%c0%ae%c0%ae", "%ff%fe",
    "%", "%2", "%zz", "%%", "%u002f", "\x00", "\xff", "é", "😀", "a" * 5000, "inst_" + "A" * 40,
    "port_", "strm_", "cinf_", "op_", "default", "-1", "0", "99999999999999999999", "~", "*", " ",
    ";", "a;b=c", "?", "#frag", "\\", "..\\..", "AA", "A", "AQ", "AB", "____", "-_-_", "=", "YWJj==",
]

NUMS = [
    "0", "1", "-1", "-0", "+1", "00000000001", "2147483647", "2147483648", "4294967296",
    "9223372036854775807", "9223372036854775808", "18446744073709551615", "18446744073709551616",
    "-9223372036854775809", "1" * 400, "1e3", "1e400", "1.5", "0x10", " 1", "1 ", "%201", "1%00",
    "%00", "%C0%AF", "", "NaN", "Infinity", "abc", "٣", "１", "\x00", "\xff", "1,2", "65536",
    "1048576", "1048577", "1024", "1025", "64", "%2D1",
]

WORDS = ["", "available", "unavailable", "disabled", "pending", "completed", "failed", "canceled",
         "AVAILABLE", "%00", "%C0%AF", "x" * 3000, "\xff", "op_" + "A" * 60, "a b", "a%20b", "%"]

# Route templates; {h} {p} {id} {s} {c} {op} are filled with real handles or junk.
ROUTES = [
    ("GET", "/healthz", []), ("GET", "/readyz", []), ("GET", "/metrics", []), ("GET", "/openapi.yaml", []),
    ("POST", "/instances", []), ("GET", "/instances", ["pageSize", "pageToken"]),
    ("GET", "/instances/{h}", []), ("DELETE", "/instances/{h}", []),
    ("GET", "/instances/{h}/status", ["since", "timeoutMs"]),
    ("POST", "/instances/{h}/ports", []), ("DELETE", "/instances/{h}/ports/{p}", []),
    ("GET", "/instances/{h}/ports/{p}/completions", ["max", "timeoutMs"]),
    ("GET", "/instances/{h}/ports/default/completions", ["max", "timeoutMs"]),
    ("GET", "/instances/{h}/operations", ["state", "pageSize", "pageToken"]),
    ("GET", "/instances/{h}/operations/{op}", ["timeoutMs"]),
    ("GET", "/instances/{h}/content/{id}", []), ("DELETE", "/instances/{h}/content/{id}", []),
    ("GET", "/instances/{h}/content/{id}/operations", ["state", "pageSize", "pageToken"]),
    ("GET", "/instances/{h}/content/{id}/operations/{op}", ["timeoutMs"]),
    ("DELETE", "/instances/{h}/content/{id}/operations/{op}", []),
    ("GET", "/instances/{h}/content/{id}/operations/{op}/buffer", []),
    ("POST", "/instances/{h}/content/{id}/streams", ["op"]),
    ("DELETE", "/instances/{h}/content/{id}/streams/{s}", []),
    ("POST", "/instances/{h}/content/{id}/streams/{s}/data", ["op"]),
    ("POST", "/instances/{h}/content/{id}/streams/{s}/complete", ["op"]),
    ("GET", "/instances/{h}/content/{id}/contentinfo", ["version"]),
    ("POST", "/instances/{h}/content/{id}/contentinfo", []),
    ("DELETE", "/instances/{h}/content/{id}/contentinfo/{c}", []),
    ("POST", "/instances/{h}/content/{id}/contentinfo/{c}/reads", ["maxBytes", "op"]),
    ("GET", "/admin/policy", []), ("PUT", "/admin/policy", []),
    ("GET", "/admin/service", []), ("PUT", "/admin/service", []),
    ("GET", "/admin/faults", []), ("PUT", "/admin/faults", []),
]

# JSON body fields per route, with the type each expects.
BODIES = {
    "/instances": {"version": "int"},
    "/streams": {"contentLength": "u64", "version": "int", "hashAlgorithm": "str", "port": "str", "key": "u64"},
    "/contentinfo": {"offset": "u64", "length": "u64", "minVersion": "int", "maxVersion": "int", "port": "str", "key": "u64"},
    "/admin/policy": {"enabled": "bool"},
    "/admin/service": {"available": "bool", "retryAfterSeconds": "int"},
    "/admin/faults": {"completionDelayMs": "int", "kinds": "list"},
}

JSON_VALUES = ["0", "1", "2", "-1", "1e400", "-1e400", "1e-400", "2.5", "18446744073709551615",
               "18446744073709551616", "9223372036854775808", "-9223372036854775809", "1" * 500,
               "0.0", "1E2", "1.0", "-0", "01", "+1", ".5", "NaN", "Infinity", "true", "false", "null",
               '""', '"1"', '"default"', '"SHA256"', '"sha256"', '"\\u0000"', '"\\ud800"', '"\\uDFFF\\uD800"',
               '"' + "x" * 5000 + '"', "[]", "{}", "[1]", '["publishAddToStream"]', '["nope"]', '[null]',
               '{"a":1}', '"\\x"', "'1'", "tru", "nul"]


class Gen:
    def __init__(self, rng, handles):
        self.r = rng
        self.hd = handles

    def pick(self, seq):
        return seq[self.r.randrange(len(seq))]

    # ---- paths
    def fill(self, template):
        r = self.r
        real = {"h": self.hd.h, "p": self.pick([self.hd.p, "default"]), "id": self.pick([self.hd.id, self.hd.open_id]),
                "s": self.hd.s, "c": self.hd.c, "op": self.pick([self.hd.op, self.hd.op_read, "cmp-x", "op_missing"])}

        def sub(m):
            k = m.group(1)
            if r.random() < 0.12:
                return self.pick(JUNK_SEGMENTS)
            return real[k]
        return re.sub(r"\{(\w+)\}", sub, template)

    def query(self, params):
        r = self.r
        items = []
        for p in params:
            if r.random() < 0.6:
                v = self.pick(NUMS) if p not in ("since", "state", "pageToken", "op") else self.pick(WORDS + NUMS[:6])
                if p == "op" and r.random() < 0.4:
                    v = self.pick(["x", "a.b~c-d_e", "A" * 64, "A" * 65, "op_" + str(r.randrange(1 << 30)), ""])
                items.append(f"{p}={v}")
                if r.random() < 0.15:
                    items.append(f"{p}={self.pick(NUMS)}")  # repeated
        if r.random() < 0.1:
            items.append(self.pick(["=", "&&", "a", "%00=%00", "x=%C0%AF", "timeoutMs", "max=", "=1", "a=b=c", "%zz=1", "+=+"]))
        if r.random() < 0.05:
            items.append("z=" + "q" * r.choice([100, 9000, 70000]))
        r.shuffle(items)
        return "&".join(items)

    def target(self):
        r = self.r
        roll = r.random()
        if roll < 0.04:
            return self.pick(["*", "http://127.0.0.1/healthz", "http://[::1/healthz", "http://x:99999/healthz",
                              "https://evil/instances", "//instances", "healthz", "", "127.0.0.1:80",
                              "http://127.0.0.1", "http:///x", "http://a@b/healthz", "/healthz#x",
                              "/" + "a/" * 3000, "/" + "%2e%2e/" * 50 + "etc/passwd", "/%2Fhealthz", "/healthz/",
                              "/healthz?", "/healthz??", "/./healthz", "/instances/../healthz", "/HEALTHZ",
                              "/" + "x" * 70000, "\\healthz", "/healthz\x00", "/\xc0\xaf", "/%"]), None
        method, template, params = self.pick(ROUTES)
        path = self.fill(template)
        if r.random() < 0.05:
            path = path.replace("/", self.pick(["//", "/./", "%2F", "/%2e/"]), 1 + r.randrange(3))
        if r.random() < 0.03:
            path = path + "/" + self.pick(JUNK_SEGMENTS)
        q = self.query(params) if params and r.random() < 0.85 else (self.query(["timeoutMs", "op"]) if r.random() < 0.05 else "")
        if q:
            path += "?" + q
        if r.random() < 0.03:
            path = "http://127.0.0.1:" + str(r.randrange(70000)) + path
        if r.random() < 0.05:
            method = self.pick(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE"])
        return path, (method, template)

    # ---- bodies
    def json_body(self, template):
        r = self.r
        key = next((k for k in BODIES if template.endswith(k)), None)
        fields = BODIES.get(key, {"version": "int"})
        roll = r.random()
        if roll < 0.08:
            depth = self.pick([64, 512, 5000, 100000])
            return ("[" * depth + "]" * depth).encode() if r.random() < 0.5 else ('{"a":' * depth + "1" + "}" * depth).encode()
        if roll < 0.13:
            return self.pick([b"", b" ", b"\xef\xbb\xbf{}", b"{}garbage", b"{} {}", b"{,}", b'{"a":1,}', b"[1,]",
                              b"\xff\xfe{\x00}\x00", b'{"version":"\xff"}', b'{"\xc0\xaf":1}', b"null", b"[]", b"1",
                              b'"str"', b"{\x00}", b'{"version":2', b'{"version":2}}', b"{'version':2}",
                              b'{"version":2}\x00', b'{"version":2}\n\n\n', b'\n\t {"version" : 2 }\r\n',
                              b'{"version":02}', b'{"version":-}', b"\x1f\x8b\x08\x00", b"{" * 3 + b"\xed\xa0\x80",
                              b'{"kinds":["publishAddToStream","publishAddToStream"]}', b"{}" * 10000])
        parts = []
        for name, typ in fields.items():
            if r.random() < 0.5:
                v = self.pick(JSON_VALUES)
                if r.random() < 0.3:
                    v = {"int": "2", "u64": "5", "str": '"default"', "bool": "true", "list": "[]"}[typ]
                parts.append(f'"{name}":{v}')
                if r.random() < 0.1:
                    parts.append(f'"{name}":{self.pick(JSON_VALUES)}')  # duplicate key
        if r.random() < 0.1:
            parts.append(f'"{self.pick(["unknown", "", "Version", "version ", "__proto__"])}":{self.pick(JSON_VALUES)}')
        r.shuffle(parts)
        body = "{" + ",".join(parts) + "}"
        if r.random() < 0.08:
            body += self.pick([",", "x", "}", " ]", "\x00", "{}", "\n"])
        return body.encode()

    # ---- headers
    def header_value(self, name):
        r = self.r
        table = {
            "Accept-Encoding": [";", ";;", "gzip,;", " ; ", "gzip;q=2", "gzip;q=-1", "gzip;q=abc", "gzip;q=", "gzip;;q=1",
                                "*;q=0", "identity;q=0", "identity;q=0,*;q=0", "gzip;q=0.5;q=1", ",,,,", "gzip" * 1000,
                                "x-gzip", "br, zstd", "gzip\x00", "gzïp", "=;=;=", "q=1", ";q=1", "gzip;=", "gzip; q = 1",
                                "gzip;q=1.0000", "gzip;q=0.001", "gzip;q=1e3", "*", "", "GZIP", ", gzip ,"],
            "Prefer": ["wait=0", "wait=1", "wait=-1", "wait=", "wait", "wait=99999999999999999999", "wait=1.5", "wait=abc",
                       "wait=1, wait=2", "wait=1;x", ";", ";;", ",", "respond-async", "return=minimal, wait=1", "wait=\"1\"",
                       "WAIT=1", "wait =1", "wait= 1", "wait=1e3", "wait=0x1", "wait=%00", "wait=2147483648", ""],
            "Content-Type": ["application/json", "application/jsonx", "application/json; charset=utf-8",
                             "application/json;charset=latin1", "application/json;", ";", ";;", "application/", "/",
                             "application/octet-stream", "APPLICATION/JSON", "application/json ; a=b", "text/plain",
                             "application/problem+json", "multipart/form-data; boundary=x", "application/json,text/plain",
                             "application/json\x00", "application/jsön", "", "application/json;q=\"", "*/*"],
            "Connection": ["close", "keep-alive", "Keep-Alive, close", "upgrade", ";", ",,,", "close;", "clo se",
                           "te, close", "x" * 5000, "keep-alive, keep-alive", "", "\x00", "close\xff"],
            "Expect": ["100-continue", "100-Continue", "100-continue;x", "200-ok", ";", "", "100-continue, 100-continue",
                       "\x00", "100"],
            "Transfer-Encoding": ["chunked", "gzip, chunked", "chunked, chunked", "identity", "Chunked", " chunked",
                                  "chunked;", ";", "", "chunked\x00", "x-chunked", "gzip", "compress,chunked", ","],
            "Content-Length": ["0", "-1", "+5", "5, 5", "5,6", "1e3", "0x10", "", " ", "99999999999999999999",
                               "18446744073709551616", "9223372036854775807", "00000000000000000005", "5 5", "٥", "\x00"],
            "Host": ["", "bad host/x", "a" * 300, "[::1]", "[::1", "127.0.0.1:99999", "127.0.0.1:", ":80", "a:b:c",
                     "x\x00y", "ex%41mple", "é.example", "host, host", "@", "*", "http://x"],
            "X-Request-Id": ["", "x" * 10000, "a\x01b", "é", "\xff\xfe", "id with spaces", "\"quoted\"", "{json}",
                             "x\tx", "%0d%0a" + MARKER, "\\n" + MARKER, "\x1b[31mred"],
            "Content-Encoding": ["gzip", "identity", "br", ";", "", "gzip, gzip", "x" * 100],
            "Authorization": ["Bearer", "Bearer ", "Basic Zm9vOmJhcg==", "Bearer " + "x" * 9000, ";", "\x00"],
            "Upgrade": ["h2c", "websocket", ";", ""],
            "Range": ["bytes=0-", "bytes=-1", "bytes=99999999999999999999-", ";"],
            "TE": ["trailers", "gzip;q=2", ";"],
            "Cookie": ["a=b", ";" * 100],
        }
        return self.pick(table[name])

    def request(self):
        """Returns (raw bytes, framing_is_sound, is_head)."""
        r = self.r
        target, route = self.target()
        method = route[0] if route else self.pick(["GET", "GET", "POST", "OPTIONS", "CONNECT", "DELETE"])
        template = route[1] if route else ""
        if target == "*":
            method = "OPTIONS"
        elif re.match(r"^[\d.]+:\d+$", target):
            method = "CONNECT"
        if r.random() < 0.06:
            method = self.pick(["get", "G\x00T", "GÉT", "BREW", "PRI", "M" * 100, "", "POST ", "\x16\x03\x01",
                                "DELETE", "PROPFIND", "QUERY", "GET\t", "{", "0", "G ET"])
        version = "HTTP/1.1"
        if r.random() < 0.08:
            version = self.pick(["HTTP/1.0", "HTTP/1.2", "HTTP/1.9", "HTTP/2.0", "HTTP/0.9", "HTTP/1.10", "HTTP/1.", "HTTP/11",
                                 "http/1.1", "HTTP/1.1 ", "HTTP/ 1.1", "HTTP/01.1", "HTTP/1.1x", "", "HTTP/9.9", "HTTP/\xff"])
        sp = " " if r.random() < 0.95 else self.pick(["  ", "\t", " \t", "\x00", "\x0b"])
        eol = "\r\n" if r.random() < 0.92 else self.pick(["\n", "\r", "\r\r\n", "\n\r", "\r\n\r"])
        line = f"{method}{sp}{target}{sp}{version}" if version else f"{method}{sp}{target}"

        body = b""
        json_route = method in ("POST", "PUT") and any(template.endswith(k) for k in BODIES)
        data_route = template.endswith("/data")
        if json_route and r.random() < 0.8:
            body = self.json_body(template)
        elif (data_route or method in ("POST", "PUT")) and r.random() < 0.6:
            body = self.pick([b"hello", b"", b"\x00" * 10, self.r.randbytes(r.choice([1, 100, 4096, 70000]))])
        headers = [("Host", "127.0.0.1")]
        if body or method in ("POST", "PUT"):
            ctype = "application/json" if json_route else "application/octet-stream"
            headers.append(("Content-Type", ctype))
        headers.append(("X-Request-Id", f"hostile-{r.randrange(1 << 30)}"))
        sound = True
        te_chunked = False
        for name in ["Accept-Encoding", "Prefer", "Content-Type", "Connection", "Expect", "Transfer-Encoding",
                     "Content-Length", "Host", "X-Request-Id", "Content-Encoding", "Authorization", "Upgrade", "Range", "TE", "Cookie"]:
            if r.random() < (0.15 if name not in ("Transfer-Encoding", "Content-Length") else 0.07):
                v = self.header_value(name)
                if r.random() < 0.5:
                    headers = [(k, x) for k, x in headers if k.lower() != name.lower()]
                headers.append((name, v))
                if name == "Transfer-Encoding":
                    te_chunked = True
                    sound = False
                if name == "Content-Length":
                    sound = sound and v.strip() == str(len(body))
        if not any(k.lower() == "content-length" for k, _ in headers) and not te_chunked:
            if body or method in ("POST", "PUT") and r.random() < 0.8:
                headers.append(("Content-Length", str(len(body))))
        if te_chunked:
            # a chunked body, well formed or not
            if r.random() < 0.6 and body:
                n = r.choice([1, 7, 4096])
                chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + n]), body[i:i + n]) for i in range(0, len(body), n))
                body = chunks + b"0\r\n\r\n"
            else:
                body = self.pick([b"0\r\n\r\n", b"5\r\nhello\r\n0\r\n\r\n", b"ffffffffffffffffff\r\nx\r\n",
                                  b"-1\r\n\r\n", b"5;ext=1\r\nhello\r\n0\r\nTrailer: x\r\n\r\n", b"5\r\nhel",
                                  b"5\nhello\n0\n\n", b"0x5\r\nhello\r\n0\r\n\r\n", b" 5\r\nhello\r\n0\r\n\r\n",
                                  b"5\r\nhelloXX0\r\n\r\n", b"1" * 100 + b"\r\n", b"0\r\n", b"\r\n\r\n"])
        # raw header layer games
        roll = r.random()
        extra = b""
        if roll < 0.12:
            extra = self.pick([b"X-A: \x00\r\n", b"X-A: \xff\xfe\r\n", b"X-A : b\r\n", b" X-A: b\r\n", b"X-A:\r\n",
                               b": novalue\r\n", b"NoColon\r\n", b"X-A: a\r\n continued\r\n", b"X-\x00: a\r\n",
                               b"X-A: a\rb\r\n", b"X-A: a\nX-B: b\r\n", b"\xc3\xa9: a\r\n", b"X-A: " + b"x" * 70000 + b"\r\n",
                               b"".join(b"X-%d: a\r\n" % i for i in range(300)), b"Host: second\r\n",
                               b"Content-Length: 0\r\n", b"Transfer-Encoding: chunked\r\n", b"\x7f: a\r\n",
                               b"X-A: \t\x0b\x0c\r\n", b"Accept-Encoding: gzip\r\nAccept-Encoding: ;\r\n"])
            if extra.startswith((b"Content-Length", b"Transfer-Encoding")):
                sound = False
        head = line.encode("utf-8", "surrogateescape") + eol.encode()
        for k, v in headers:
            head += k.encode() + b": " + v.encode("utf-8", "surrogateescape") + eol.encode()
        head += extra + eol.encode()
        if eol not in ("\r\n", "\n"):
            sound = False  # bare CR: a server may wait for the LF; read up to the close
        raw = head + body
        if r.random() < 0.05:
            # pipelining: the same request twice, then a plain one
            # (HEAD last when the others are HEAD, so that every answer of the stream has no body)
            raw = raw + raw + (b"HEAD" if method == "HEAD" else b"GET") + b" /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
            sound = False  # several answers: read them all, up to the close
        if r.random() < 0.02:
            raw = self.pick([b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + self.r.randbytes(40),
                             b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", b"\r\n\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
                             b"\x00" * 64, self.r.randbytes(r.choice([1, 16, 5000])), b"GET /healthz\r\n\r\n",
                             b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 20000 + b"\r\n", b"\n", b"GET"])
            # a first byte that cannot begin a method must be refused at once, not held
            sound = not re.match(rb"[!#$%&'*+.^_`|~0-9A-Za-z\r\n]", raw[:1])
        return raw, sound, raw.startswith(b"HEAD ")


# ---------------------------------------------------------------- one case

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def check_h2_frames(data):
    """None when `data` is whole HTTP/2 frames (RFC 9113 §4.1) beginning with the server's
    SETTINGS on stream 0, else what is wrong."""
    if len(data) < 9:
        return f"HTTP/2 preface answered without a SETTINGS frame: {data[:60]!r}"
    offset, first = 0, True
    while offset < len(data):
        if len(data) - offset < 9:
            return f"a partial HTTP/2 frame header after the answers: {data[offset:offset + 60]!r}"
        length = int.from_bytes(data[offset:offset + 3], "big")
        kind, stream = data[offset + 3], int.from_bytes(data[offset + 5:offset + 9], "big") & 0x7FFFFFFF
        if first and (kind != 4 or stream != 0):
            return f"the first HTTP/2 frame is not SETTINGS on stream 0: type {kind}, stream {stream}"
        if len(data) - offset - 9 < length:
            return f"a truncated HTTP/2 frame (type {kind}, {length} bytes)"
        offset += 9 + length
        first = False
    return None

def run_case(server, raw, sound, is_head, rng):
    """Sends raw; returns None or a failure description."""
    half_close = (not sound) or rng.random() < 0.3
    try:
        s = socket.create_connection((server.host, server.port), timeout=2)
    except OSError as e:
        return f"cannot connect: {e}"
    t0 = time.monotonic()
    try:
        try:
            s.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may refuse and close before reading everything
        if half_close:
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        limit = (HEAD_TIMEOUT + BODY_TIMEOUT + 3) if half_close else HEAD_TIMEOUT + 3
        answers, closed, timed_out, leftover = read_responses(s, t0 + limit, is_head, half_close)
    except Garbage as e:
        return f"malformed answer: {e}"
    finally:
        s.close()
    elapsed = time.monotonic() - t0
    if raw.startswith(H2_PREFACE):
        # HTTP/2 by prior knowledge: the answer is HTTP/2 frames, not an HTTP/1.1 response.
        STATUSES["h2"] = STATUSES.get("h2", 0) + 1
        return check_h2_frames(leftover)
    STATUSES[answers[0][0] if answers else "closed"] = STATUSES.get(answers[0][0] if answers else "closed", 0) + 1
    for status, headers, body in answers:
        why = check_answer(status, headers, body, is_head)
        if why:
            return why
    if leftover.strip(b"\r\n"):
        return f"partial or garbage bytes after the answers: {leftover[:200]!r}"
    if timed_out and not answers:
        return f"no answer and no close after {elapsed:.1f} s"
    if sound and not half_close and not answers:
        return "a complete request was not answered (connection closed)"
    if sound and not half_close and elapsed > HEAD_TIMEOUT * 0.8:
        st = answers[0][0] if answers else None
        return f"a complete request was held {elapsed:.1f} s (answer {st}), about the head timeout"
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cases", type=int, default=3000)
    ap.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "peerdistd"))
    ap.add_argument("--build", action="store_true", help="swift build -c release --product peerdistd first")
    ap.add_argument("--only", type=int, help="run only this case number (same seed)")
    ap.add_argument("--max-failures", type=int, default=20, help="stop after this many")
    ap.add_argument("--keep-going", action="store_true", help="restart the server after a crash and go on")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    if a.only is not None:
        a.cases = max(a.cases, a.only + 1)
    if a.build:
        subprocess.run(["swift", "build", "-c", "release", "--product", "peerdistd"], cwd=ROOT, check=True)
    if not os.path.exists(a.binary):
        raise SystemExit(f"{a.binary} not found (build it, or pass --build)")

    server = Server(a.binary, [])
    handles = Handles()
    passed = failed = 0
    failures = []
    started = time.monotonic()
    try:
        handles.setup(server, 0)
        for _ in range(50):
            simple(server, "GET", "/healthz")
        baseline = server.threads()
        print(f"peerdistd pid {server.proc.pid} on {server.host}:{server.port}, threads at baseline {baseline}, seed {a.seed}", flush=True)
        for n in range(a.cases):
            rng = random.Random(f"{a.seed}:{n}")  # every case can be replayed alone
            if n % 100 == 0 and n and a.only is None:
                try:
                    handles.setup(server, n)
                except Exception as e:  # noqa: BLE001 (a setup failure is a finding too)
                    failures.append((n, b"(setup)", f"setup failed: {e!r}"))
                    failed += 1
            if a.only is not None:
                if n != a.only:
                    continue
                handles.setup(server, n)
            raw, sound, is_head = Gen(rng, handles).request()
            why = run_case(server, raw, sound, is_head, rng)
            if why is None:
                time.sleep(0.002)
                if not server.alive():
                    why = f"the server died (exit status {server.proc.returncode})"
                else:
                    why = healthz(server)
            if why is None:
                t = server.threads()
                if t > baseline + THREAD_MARGIN:
                    time.sleep(0.5)  # let transient workers retire before calling it growth
                    t = server.threads()
                    if t > baseline + THREAD_MARGIN:
                        why = f"threads grew from {baseline} to {t}"
                        baseline = t  # report growth once per step
            if why is None:
                passed += 1
                if a.verbose:
                    print(f"case {n} ok {raw[:120]!r}")
                continue
            failed += 1
            failures.append((n, raw, why))
            print(f"FAIL case {n} (seed {a.seed}): {why}\n  request {raw[:2000]!r}{' …' if len(raw) > 2000 else ''}"
                  f" ({len(raw)} bytes)\n  replay: python3 scripts/hostile.py --seed {a.seed} --only {n}", flush=True)
            if not server.alive():
                print("  server stderr (tail):\n" + server.stderr_tail(), flush=True)
                if not a.keep_going:
                    break
                server.stop()
                server = Server(a.binary, [])
                handles.setup(server, n)
                baseline = server.threads()
            if failed >= a.max_failures:
                print(f"stopping after {failed} failures", flush=True)
                break
        # log injection: a request-supplied CR/LF must never start a log line
        server.err.flush()
        with open(server.errpath, "rb") as f:
            for l in f.read().splitlines():
                if l.lstrip().startswith(MARKER.encode()):
                    failed += 1
                    print(f"FAIL: a request broke the log apart: {l[:200]!r}")
                    break
    finally:
        server.stop()
        if failed == 0:
            server.cleanup()
        else:
            print(f"server stderr kept in {server.errpath}")
    print("first answers: " + ", ".join(f"{k}: {v}" for k, v in sorted(STATUSES.items(), key=lambda kv: str(kv[0]))))
    print(f"{passed} passed, {failed} failed ({time.monotonic() - started:.0f} s, seed {a.seed})")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
