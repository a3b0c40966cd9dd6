#!/usr/bin/env python3
"""Benchmarks retrieval (PeerDistClient*) over HTTP against a release peerdistd (issue 11).

  swift build -c release --product peerdistd
  python3 Benchmarks/retrieval_bench.py              # 1 GiB / 2 GiB, 3 rounds (a few minutes)
  python3 Benchmarks/retrieval_bench.py --quick      # 256 MiB / 512 MiB, 100 latency samples
  python3 Benchmarks/retrieval_bench.py --only adddata --versions 1,2 --read-depth 4
  python3 Benchmarks/retrieval_bench.py --data-parent /dev/shm   # the file system out of the way

What it measures, each round on a fresh peerdistd (port 0, a temporary data directory, default
settings otherwise), medians of the rounds, with `openssl speed -evp sha256` on one core measured
in the same run (once per round) as the yardstick; beside it, each round, how fast Python writes
256 MiB in 64 KiB pwrites to one file where the data directories go (the cache appends V1 blocks
to pack files, so this bounds AddData):

  adddata  (--versions 1,2: V1 and V2 content information; V2 hashes with truncated SHA-512, so
           `openssl speed -evp sha512` is measured too and V2 is also given against it)
           publish SIZE of pseudo-random content (every 64 KiB block distinct), GET its content
           information, open a retrieval, add the content information (in portions, as the body
           limit requires) and complete it, then time PeerDistClientAddData of the whole content:
           POST .../data?offset=N with `Prefer: wait`, one after another on one keep-alive
           connection, in pieces of --piece bytes (default 32 MiB, one V1 segment: a client that
           fetches a segment from the origin and adds it as it arrives; `--piece 0` sends the
           whole content as one streamed body). The clock stops when the last AddData has ended,
           i.e. its bytes are verified and stored. Before it, untimed, 32 MiB of other content are
           added (a warm-up: the cache's folders exist, as in a running service; --no-warm).
           Goal: >= 0.5x openssl SHA-256.
  reads    on that cache: block reads with maxBytes = 1 MiB (the service's cap) and timeoutMs 0
           across the whole content, each followed by GET of its buffer, compared with the
           content; the bytes are verified again by the service as they are read; --read-depth N
           keeps N reads in flight (N threads, a connection each). Goal: >= 0.5x.
  latency  a block read parked (timeoutMs 60000) on an uncached V1 block of retrieval A, then an
           AddData of exactly that block through retrieval B; the time from sending the AddData
           to receiving the read's completion. Two answers are timed: "port", a
           GetQueuedCompletionStatus long-poll on A's own port (the IOCP way; B's completions go to
           another port), and "opwait", GET .../operations/{op}?timeoutMs= on the read. Goal p99
           <= 2 ms (on the port).
  memory   VmRSS of peerdistd every 50 ms during an AddData of MEMSIZE (2 GiB): the peak's growth
           over the baseline taken just before (content information already complete). Goal
           <= 64 MiB.

The server's CPU seconds (from /proc, user + system) and this client's are printed for each
timed phase, so that one can see the client is not what is measured, and MiB per server CPU
second beside the wall-clock rate (the machine may be shared). The phases run one after another
(--only adddata,latency,memory), the evicting memory runs last. Everything runs on 127.0.0.1 and
stops by itself; each data directory is removed when its server stops.
"""
import argparse, json, os, re, resource, shutil, socket, statistics, struct, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from httpclient import DEFAULT_BINARY, Server, b64  # noqa: E402

MiB = 1 << 20
GiB = 1 << 30
BLOCK = 64 << 10          # a V1 block
READ_MAX = 1 << 20        # EngineLimits.maxReadBytes: larger reads are shortened anyway
CI_PORTION = 512 << 10    # content information portions: under --max-body-size (1 MiB by default)
# The block cache's bound, passed as --cache-size when the daemon has the flag (a daemon without it
# keeps its built-in 1 GiB). 4 GiB: nothing is evicted, not even in the 2 GiB memory run; the
# bench's --cache-size 0 keeps the daemon's default (1 GiB), where the timed AddData evicts the
# warm-up and the memory run evicts as it goes (a full cache's steady state).
CACHE_SIZE_BYTES = 4 * GiB
TAG = "00112233445566778899aabbccddeeff"
TICK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- a lean keep-alive client

class Conn:
    """HTTP/1.1 on one socket: bodies go out with sendall from a memoryview, come in by recv_into."""

    def __init__(self, host, port, timeout=120):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def close(self):
        self.sock.close()

    def send(self, method, path, body=b"", headers=None, ctype=None, length=None):
        n = len(body) if length is None else length
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {n}\r\n"
        if ctype:
            head += f"Content-Type: {ctype}\r\n"
        for k, v in (headers or {}).items():
            head += f"{k}: {v}\r\n"
        head = (head + "\r\n").encode()
        if len(body) <= 65536:
            self.sock.sendall(head + bytes(body))
        else:
            self.sock.sendall(head)
            self.sock.sendall(memoryview(body))

    def recv(self):
        while True:
            i = self.buf.find(b"\r\n\r\n")
            while i < 0:
                chunk = self.sock.recv(262144)
                if not chunk:
                    raise ConnectionError("closed by the server")
                self.buf += chunk
                i = self.buf.find(b"\r\n\r\n")
            head = bytes(self.buf[:i]).decode("latin-1").split("\r\n")
            del self.buf[:i + 4]
            status = int(head[0].split(" ", 2)[1])
            headers = {}
            for line in head[1:]:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
            if 100 <= status < 200:
                continue
            n = int(headers.get("content-length", "0"))
            if n <= len(self.buf):
                body = bytes(self.buf[:n])
                del self.buf[:n]
            else:
                body = bytearray(n)
                view = memoryview(body)
                have = len(self.buf)
                view[:have] = self.buf
                self.buf.clear()
                while have < n:
                    k = self.sock.recv_into(view[have:])
                    if not k:
                        raise ConnectionError("closed by the server")
                    have += k
            return status, headers, body

    def call(self, method, path, body=b"", headers=None, ctype=None, expect=(200, 201)):
        if isinstance(body, (dict, list)):
            body, ctype = json.dumps(body).encode(), "application/json"
        self.send(method, path, body, headers, ctype)
        status, hdrs, data = self.recv()
        if expect and status not in expect:
            raise RuntimeError(f"{method} {path}: {status} {bytes(data[:300])!r}")
        return status, hdrs, data

    def json(self, method, path, body=b"", headers=None, ctype=None, expect=(200, 201)):
        return json.loads(self.call(method, path, body, headers, ctype, expect)[2])


WAIT = {"Prefer": "wait=60"}
OCTETS = "application/octet-stream"


def ended_ok(op, what):
    if op.get("state") == "pending" or op.get("result", {}).get("code") != 0:
        raise RuntimeError(f"{what}: {op}")
    return op


# ---------------------------------------------------------------- content

class Content:
    """SIZE bytes, 32 MiB pieces of one random base with every 64 KiB block stamped (its index and a
    seed), so no two blocks and no two segments are alike; regenerated on demand."""

    PIECE = 32 * MiB

    def __init__(self, size, seed):
        self.size, self.seed = size, seed
        self.base = os.urandom(self.PIECE)
        self.made = None  # every piece, once made by all_pieces()

    def all_pieces(self):
        """Every piece, made once and kept (range() then reads them instead of making them again:
        making a piece costs the client about 14 ms, as much as reading 7 MiB)."""
        if self.made is None:
            self.made = list(self.pieces())
        return self.made

    def piece(self, k):
        start = k * self.PIECE
        n = min(self.PIECE, self.size - start)
        b = bytearray(self.base[:n])
        for off in range(0, n, BLOCK):
            struct.pack_into("<QQ", b, off, self.seed, (start + off) // BLOCK)
        return b

    def pieces(self):
        return (self.piece(k) for k in range((self.size + self.PIECE - 1) // self.PIECE))

    def range(self, offset, n, cache):
        """Bytes [offset, offset+n) within one piece (CACHE, a dict, keeps the last piece made:
        reads walk the pieces in order)."""
        k = offset // self.PIECE
        if self.made is not None:
            o = offset - k * self.PIECE
            return memoryview(self.made[k])[o:o + n]
        if cache.get("key") != (id(self), k):
            cache["key"], cache["piece"] = (id(self), k), self.piece(k)
        o = offset - k * self.PIECE
        return memoryview(cache["piece"])[o:o + n]


# ---------------------------------------------------------------- service steps

def start_server(binary, cache_size):
    """peerdistd on port 0; its data directory is removed when it stops. Kept until the end of the
    run, the directories' page cache grew by a GiB a round, into memory this VM had never touched:
    from the third round on, the copy into the page cache (copy_folio_from_iter_atomic) took twice
    an AddData's CPU. Removed, each round reuses the pages of the one before."""
    args = ["--cache-size", str(cache_size)] if cache_size else []
    return Server(binary=binary, args=args, log_level="warning")


def cpu_s(server):
    return server.cpu_ticks() / TICK


def self_cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def publish(c, h, cid, content, version):
    s = c.json("POST", f"/instances/{h}/content/{cid}/streams", {"contentLength": content.size, "version": version})["stream"]
    for p in content.pieces():
        c.send("POST", f"/instances/{h}/content/{cid}/streams/{s}/data", p, WAIT, OCTETS)
        st, _, body = c.recv()
        if st != 200:
            raise RuntimeError(f"append: {st} {bytes(body[:300])!r}")
        ended_ok(json.loads(body), "append")
    ended_ok(c.json("POST", f"/instances/{h}/content/{cid}/streams/{s}/complete", headers=WAIT), "complete stream")
    return bytes(c.call("GET", f"/instances/{h}/content/{cid}/contentinfo?version={version}")[2])


def open_retrieval(c, h, ci, port=None, tag=TAG):
    body = {"contentTag": tag}
    if port:
        body["port"] = port
    r = c.json("POST", f"/instances/{h}/retrievals", body)["retrieval"]
    for off in range(0, len(ci), CI_PORTION):
        ended_ok(c.json("POST", f"/instances/{h}/retrievals/{r}/contentinfo", ci[off:off + CI_PORTION], WAIT, OCTETS), "add ci")
    ended_ok(c.json("POST", f"/instances/{h}/retrievals/{r}/contentinfo/complete", headers=WAIT), "complete ci")
    return r


def prepared(server, content, version, port=None):
    """An instance with the content published and a retrieval with its content information complete."""
    c = Conn(server.host, server.port)
    h = c.json("POST", "/instances", {"version": 2})["handle"]
    cid = b64(b"bench-%d" % content.seed)
    ci = publish(c, h, cid, content, version)
    return c, h, ci, open_retrieval(c, h, ci, port)


def warm_up(c, h, piece):
    """AddData of 32 MiB of other content under another tag: the cache has a pack and the code paths
    are warm (as in a service that has run for a while); returns that AddData's MiB/s (a fresh
    cache's first fill). It is not flushed: with the 1 GiB bound the timed AddData evicts it at its
    end instead, as a full cache does."""
    warm = Content(32 * MiB, seed=424242)
    cid = b64(b"warm-up")
    ci = publish(c, h, cid, warm, 1)
    tag = "ffeeddccbbaa99887766554433221100"
    r = open_retrieval(c, h, ci, tag=tag)
    t = add_data(c, h, r, warm.pieces(), warm.size, piece)
    c.call("DELETE", f"/instances/{h}/retrievals/{r}")
    return warm.size / MiB / t


def add_data(c, h, r, pieces, size, piece):
    """AddData of the whole content (SIZE bytes, from the iterable PIECES), one body of PIECE bytes
    after another (0: one streamed body); returns the seconds until the last one has ended."""
    t0 = time.perf_counter()
    answers, offset = [], 0
    if piece == 0:
        c.send("POST", f"/instances/{h}/retrievals/{r}/data?offset=0", b"", WAIT, OCTETS, length=size)
        for p in pieces:
            c.sock.sendall(p)
        answers.append(c.recv())
        offset = size
    else:
        for p in pieces:
            for o in range(0, len(p), piece):
                chunk = memoryview(p)[o:o + piece]
                c.send("POST", f"/instances/{h}/retrievals/{r}/data?offset={offset}", chunk, WAIT, OCTETS)
                answers.append(c.recv())
                offset += len(chunk)
    elapsed = time.perf_counter() - t0
    total = 0
    for st, _, body in answers:
        if st != 200:
            raise RuntimeError(f"AddData: {st} {bytes(body[:300])!r}")
        total += ended_ok(json.loads(body), "AddData")["bytesTransferred"]
    if total != offset:
        raise RuntimeError(f"AddData accepted {total} of {offset} bytes")
    return elapsed


def read_all(c, h, r, content, depth=1):
    """Block reads of 1 MiB across the content, each buffer fetched and compared; returns seconds
    and the count of reads. With DEPTH > 1, DEPTH threads on connections of their own read
    interleaved 32 MiB stripes (reads in flight at once, as overlapped I/O allows)."""
    if depth > 1:
        counts, errors = [0] * depth, []

        def stripe(t):
            try:
                conn = Conn(c.sock.getpeername()[0], c.sock.getpeername()[1])
                for start in range(t * Content.PIECE, content.size, depth * Content.PIECE):
                    counts[t] += read_range(conn, h, r, content, start, min(start + Content.PIECE, content.size), f"t{t}-")
                conn.close()
            except Exception as e:  # noqa: BLE001 (reported below)
                errors.append(e)

        threads = [threading.Thread(target=stripe, args=(t,)) for t in range(depth)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return time.perf_counter() - t0, sum(counts)
    t0 = time.perf_counter()
    n = read_range(c, h, r, content, 0, content.size, "")
    return time.perf_counter() - t0, n


def read_range(c, h, r, content, offset, end, prefix):
    """Block reads from OFFSET to END, each buffer fetched and compared with the content."""
    cache = {}
    i = 0
    while offset < end:
        i += 1
        c.send("POST", f"/instances/{h}/retrievals/{r}/reads?op=rd-{prefix}{i}",
               json.dumps({"mode": "block", "offset": offset, "maxBytes": READ_MAX, "timeoutMs": 0}).encode(),
               WAIT, "application/json")
        st, _, body = c.recv()
        if st != 200:
            raise RuntimeError(f"read at {offset}: {st} {bytes(body[:300])!r}")
        op = ended_ok(json.loads(body), f"read at {offset}")
        n = op["bytesTransferred"]
        if op["offset"] != offset or n <= 0:
            raise RuntimeError(f"read at {offset}: {op}")
        st, hdrs, data = c.call("GET", f"/instances/{h}/retrievals/{r}/operations/rd-{prefix}{i}/buffer")
        if len(data) != n or data != content.range(offset, n, cache):
            raise RuntimeError(f"buffer at {offset}: {len(data)} bytes, not the content's {n}")
        offset += n
    return i


# ---------------------------------------------------------------- phases

def openssl_mib_s(alg="sha256"):
    """`openssl speed -evp ALG` on 64 KiB buffers, one core (it counts CPU time), in MiB/s."""
    out = subprocess.run(["openssl", "speed", "-evp", alg, "-bytes", "65536", "-seconds", "3"],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.lower().startswith(alg) and line.rstrip().endswith("k"):
            return float(line.split()[-1][:-1]) * 1000 / MiB
    raise RuntimeError(f"openssl speed: no {alg} line in {out!r}")


def disk_write_mib_s(count=4096):
    """The file system's yardstick, where the data directories go: 4096 blocks of 64 KiB appended
    with pwrite to one new file, as the cache appends V1 blocks to a pack (Python's own cost
    included, so a floor); MiB/s. Removed at once."""
    d = tempfile.mkdtemp(prefix="peerdist-fsbench-")
    try:
        data = os.urandom(BLOCK)
        fd = os.open(f"{d}/pack", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        t0 = time.perf_counter()
        for i in range(count):
            os.pwrite(fd, data, i * BLOCK)
        elapsed = time.perf_counter() - t0
        os.close(fd)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return count * BLOCK / MiB / elapsed


def round_adddata_reads(args, version, rnd, content, pieces):
    server = start_server(args.binary, args.cache_flag)
    try:
        c, h, ci, r = prepared(server, content, version)
        cold = warm_up(c, h, args.piece) if args.warm else None
        s0, c0 = cpu_s(server), self_cpu_s()
        t_add = add_data(c, h, r, pieces, content.size, args.piece)
        s1, c1 = cpu_s(server), self_cpu_s()
        # Reads on a second retrieval, so that nothing of the first is reused.
        r2 = open_retrieval(c, h, ci)
        s2, c2 = cpu_s(server), self_cpu_s()
        t_read, nreads = read_all(c, h, r2, content, args.read_depth)
        s3, c3 = cpu_s(server), self_cpu_s()
        metrics = bytes(c.call("GET", "/metrics")[2]).decode(errors="replace")
        c.close()
        return {"cold": cold, "add_s": t_add, "add_srv": s1 - s0, "add_cli": c1 - c0,
                "read_s": t_read, "read_srv": s3 - s2, "read_cli": c3 - c2, "reads": nreads,
                "metrics": {k: v for k, v in re.findall(r"^(peerdist_\w*cache\w*)\s+(\S+)$", metrics, re.M)}}
    finally:
        server.stop()


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(p / 100 * len(xs) + 0.5)) - 1))]


def round_latency(args, rnd):
    samples = args.samples
    content = Content(2 * samples * BLOCK, seed=1000 + rnd)
    server = start_server(args.binary, args.cache_flag)
    try:
        c = Conn(server.host, server.port)
        h = c.json("POST", "/instances", {"version": 2})["handle"]
        ci = publish(c, h, b64(b"lat"), content, 1)
        port = c.json("POST", f"/instances/{h}/ports")["port"]
        ra = open_retrieval(c, h, ci, port)   # the reader, on its own port
        rb = open_retrieval(c, h, ci)         # the writer, on the default port
        # The reader's port holds its content information's completions: take them first.
        while c.json("GET", f"/instances/{h}/ports/{port}/completions?max=1024&timeoutMs=0")["completions"]:
            pass
        waiter = Conn(server.host, server.port)
        port_lat, opwait_lat, add_lat, pieces = [], [], [], {}
        s0, c0 = cpu_s(server), self_cpu_s()
        for i in range(2 * samples):
            via_port = i % 2 == 0
            off = i * BLOCK
            op = f"w-{i}"
            block = bytes(content.range(off, BLOCK, pieces))
            if via_port:
                waiter.send("GET", f"/instances/{h}/ports/{port}/completions?max=1&timeoutMs=30000")
            st, _, body = c.call("POST", f"/instances/{h}/retrievals/{ra}/reads?op={op}",
                                 {"mode": "block", "offset": off, "maxBytes": BLOCK, "timeoutMs": 60000}, expect=(202,))
            if not via_port:
                waiter.send("GET", f"/instances/{h}/retrievals/{ra}/operations/{op}?timeoutMs=30000")
            time.sleep(0.003)  # let the long-poll park (a bench; the answer is timed from the AddData anyway)
            t0 = time.perf_counter()
            c.send("POST", f"/instances/{h}/retrievals/{rb}/data?offset={off}", block, WAIT, OCTETS)
            st, _, body = waiter.recv()
            t1 = time.perf_counter()
            ast, _, abody = c.recv()
            t2 = time.perf_counter()
            if st != 200 or ast != 200:
                raise RuntimeError(f"sample {i}: {st} {bytes(body[:200])!r} / {ast} {bytes(abody[:200])!r}")
            answer = json.loads(body)
            if via_port:
                comps = answer["completions"]
                if len(comps) != 1:
                    raise RuntimeError(f"sample {i}: {answer}")
                answer = dict(comps[0], id=comps[0]["operation"])
            if answer.get("id") != op or answer.get("state") == "pending" or answer["result"]["code"] != 0 \
                    or answer["bytesTransferred"] != BLOCK:
                raise RuntimeError(f"sample {i}: the read's answer is {answer}")
            ended_ok(json.loads(abody), "AddData")
            if not via_port:  # its completion was posted to the port too: take it
                left = c.json("GET", f"/instances/{h}/ports/{port}/completions?max=16&timeoutMs=1000")["completions"]
                if [x["operation"] for x in left] != [op]:
                    raise RuntimeError(f"sample {i}: the port holds {left}")
            (port_lat if via_port else opwait_lat).append((t1 - t0) * 1000)
            add_lat.append((t2 - t0) * 1000)
        s1, c1 = cpu_s(server), self_cpu_s()
        # The floor: a round trip of GET /healthz on the same keep-alive connection.
        floor = []
        for _ in range(samples):
            t0 = time.perf_counter()
            c.call("GET", "/healthz")
            floor.append((time.perf_counter() - t0) * 1000)
        waiter.close()
        c.close()
        return {"port": port_lat, "opwait": opwait_lat, "add": add_lat, "floor": floor, "srv": s1 - s0, "cli": c1 - c0}
    finally:
        server.stop()


def round_memory(args, rnd):
    content = Content(args.memsize, seed=2000 + rnd)
    server = start_server(args.binary, args.cache_flag)
    try:
        c, h, ci, r = prepared(server, content, 1)
        time.sleep(0.5)
        baseline = statistics.median(server.rss_kib() for _ in range(5) if time.sleep(0.05) is None)
        samples, stop = [], threading.Event()

        def sample():
            while not stop.is_set():
                samples.append(server.rss_kib())
                stop.wait(0.05)

        t = threading.Thread(target=sample)
        t.start()
        s0 = cpu_s(server)
        try:
            elapsed = add_data(c, h, r, content.pieces(), content.size, args.piece)
        finally:
            stop.set()
            t.join()
        s1 = cpu_s(server)
        after = server.rss_kib()
        c.close()
        return {"baseline": baseline / 1024, "peak": max(samples) / 1024, "growth": (max(samples) - baseline) / 1024,
                "after": after / 1024, "samples": len(samples), "s": elapsed, "srv": s1 - s0}
    finally:
        server.stop()


# ---------------------------------------------------------------- main

def metrics_line(m):
    """The cache's figures from /metrics at the end of a round, short."""
    def get(k):
        return float(m.get(f"peerdist_cache_{k}", "nan"))
    return (f"cache {get('bytes') / MiB:.0f} MiB in {get('entries'):.0f} entries, {get('hits_total'):.0f} hits, "
            f"{get('misses_total'):.0f} misses, {get('evictions_total'):.0f} evictions")


def med(xs):
    return statistics.median(xs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=DEFAULT_BINARY)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="256 MiB content, 512 MiB memory run, 100 latency samples")
    ap.add_argument("--size", type=int, help="content bytes for adddata/reads (default 1 GiB)")
    ap.add_argument("--memsize", type=int, help="AddData bytes of the memory run (default 2 GiB)")
    ap.add_argument("--samples", type=int, help="latency samples per answer kind per round (default 200)")
    ap.add_argument("--piece", type=int, default=32 * MiB, help="AddData body size; 0 = one streamed body")
    ap.add_argument("--read-depth", type=int, default=1,
                    help="reads in flight at once (threads with a connection each); default 1")
    ap.add_argument("--versions", default="1", help="content information versions for adddata/reads: 1, 2 or 1,2")
    ap.add_argument("--no-warm", dest="warm", action="store_false",
                    help="time AddData on a fresh cache (its folders made as it goes) instead of after a 32 MiB warm-up")
    ap.add_argument("--data-parent", help="where the temporary data directories go (default: $TMPDIR or /tmp); "
                    "e.g. /dev/shm to take the file system out of the figures")
    ap.add_argument("--cache-size", type=int, default=CACHE_SIZE_BYTES,
                    help="the daemon's --cache-size (default 4 GiB, nothing evicted); 0 = its own default")
    ap.add_argument("--only", default="adddata,latency,memory", help="phases: adddata (includes reads), latency, memory")
    args = ap.parse_args()
    args.size = args.size or (256 * MiB if args.quick else GiB)
    args.memsize = args.memsize or (512 * MiB if args.quick else 2 * GiB)
    args.samples = args.samples or (100 if args.quick else 200)
    if args.piece and (args.piece % BLOCK or args.piece > Content.PIECE):
        raise SystemExit("--piece must be a multiple of 64 KiB up to 32 MiB (or 0)")
    if not os.path.exists(args.binary):
        raise SystemExit(f"{args.binary} missing: swift build -c release --product peerdistd")
    helptext = subprocess.run([args.binary, "--help"], capture_output=True, text=True).stdout
    args.cache_flag = args.cache_size if "--cache-size" in helptext else 0
    if args.data_parent:
        tempfile.tempdir = args.data_parent
    phases = set(args.only.split(","))
    versions = [int(v) for v in args.versions.split(",")]
    print(f"peerdistd: {args.binary}; " + (f"--cache-size {args.cache_flag}" if args.cache_flag else
          "its default cache size" + ("" if "--cache-size" in helptext else " (it has no --cache-size)")))
    print(f"data directories under {tempfile.gettempdir()}")
    print(f"content {args.size // MiB} MiB, AddData pieces {args.piece // MiB if args.piece else 'one body'} "
          f"{'MiB' if args.piece else ''}, memory run {args.memsize // MiB} MiB, {args.samples} latency samples x2, "
          f"{args.read_depth} read(s) in flight, {args.rounds} rounds; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)

    ssl, ssl512, fsb = [], [], []
    results = {v: [] for v in versions}
    lat = []
    mem = []
    content = Content(args.size, seed=1) if "adddata" in phases else None
    pieces = content.all_pieces() if content else None
    # Phase by phase (the memory runs last: a 2 GiB AddData into the 1 GiB cache evicts as it goes).
    for rnd in range(args.rounds):
        ssl.append(openssl_mib_s("sha256"))
        if 2 in versions and "adddata" in phases:  # V2 hashes with SHA-512 (truncated): its own yardstick
            ssl512.append(openssl_mib_s("sha512"))
        fsb.append(disk_write_mib_s())
        print(f"round {rnd + 1}: openssl sha256 {ssl[-1]:.0f} MiB/s; 64 KiB appends {fsb[-1]:.0f} MiB/s; "
              f"load average {os.getloadavg()[0]:.2f}", flush=True)
        if "adddata" in phases:
            for v in versions:
                res = round_adddata_reads(args, v, rnd, content, pieces)
                results[v].append(res)
                mb = args.size / MiB
                if res["cold"]:
                    print(f"  V{v} warm-up AddData (fresh cache, 32 MiB) {res['cold']:.0f} MiB/s")
                print(f"  V{v} AddData {mb / res['add_s']:.0f} MiB/s (server CPU {res['add_srv']:.2f} s, client {res['add_cli']:.2f} s); "
                      f"reads {mb / res['read_s']:.0f} MiB/s in {res['reads']} reads (server CPU {res['read_srv']:.2f} s, "
                      f"client {res['read_cli']:.2f} s){'; ' + metrics_line(res['metrics']) if res['metrics'] else ''}", flush=True)
    for rnd in range(args.rounds if "latency" in phases else 0):
        res = round_latency(args, rnd)
        lat.append(res)
        print(f"latency round {rnd + 1}: port p50 {med(res['port']):.3f} p99 {percentile(res['port'], 99):.3f} ms; "
              f"opwait p50 {med(res['opwait']):.3f} p99 {percentile(res['opwait'], 99):.3f} ms; "
              f"AddData answer p50 {med(res['add']):.3f} ms (server CPU {res['srv']:.2f} s, client {res['cli']:.2f} s)", flush=True)
    for rnd in range(args.rounds if "memory" in phases else 0):
        res = round_memory(args, rnd)
        mem.append(res)
        print(f"memory round {rnd + 1}: baseline {res['baseline']:.1f} MiB, peak {res['peak']:.1f}, growth {res['growth']:.1f} MiB "
              f"({res['samples']} samples, {args.memsize / MiB / res['s']:.0f} MiB/s), after {res['after']:.1f}", flush=True)

    sha = med(ssl)
    print()
    print(f"openssl speed -evp sha256 (64 KiB, one core): median {sha:.0f} MiB/s  (rounds: {', '.join(f'{x:.0f}' for x in ssl)})")
    if ssl512:
        print(f"openssl speed -evp sha512 (64 KiB, one core, V2's hash): median {med(ssl512):.0f} MiB/s  "
              f"(rounds: {', '.join(f'{x:.0f}' for x in ssl512)})")
    print(f"64 KiB blocks appended to a file under {tempfile.gettempdir()}: median {med(fsb):.0f} MiB/s  "
          f"(rounds: {', '.join(f'{x:.0f}' for x in fsb)})")
    print(f"{'figure':44} {'median':>10} {'rounds':>26} {'ratio':>7} {'goal':>12}")

    def row(name, values, unit, goal, ratio=None, ok=None):
        fmt = (lambda x: f"{x:.3f}") if unit == "ms" else (lambda x: f"{x:.1f}" if x < 100 else f"{x:.0f}")
        rs = ", ".join(fmt(x) for x in values)
        m = med(values)
        r = f"{ratio:.2f}x" if ratio is not None else ""
        verdict = "" if ok is None else (" ok" if ok else " MISS")
        print(f"{name:44} {fmt(m):>8} {unit:<5} {rs:>24} {r:>7} {goal:>9}{verdict}")

    mb = args.size / MiB
    for v in versions:
        rs = results[v]
        if not rs:
            continue
        add = [mb / x["add_s"] for x in rs]
        rd = [mb / x["read_s"] for x in rs]
        row(f"V{v} AddData {args.size // MiB} MiB, verified+stored", add, "MiB/s", ">=0.5x", med(add) / sha, med(add) / sha >= 0.5)
        row(f"  server CPU s", [x["add_srv"] for x in rs], "s", "")
        addc = [mb / x["add_srv"] for x in rs]
        row(f"  MiB per server CPU second", addc, "MiB", ">=0.5x", med(addc) / sha)
        row(f"  client CPU s", [x["add_cli"] for x in rs], "s", "")
        if v == 2 and ssl512:
            row(f"  V2 AddData against openssl sha512", add, "MiB/s", "", med(add) / med(ssl512))
        row(f"V{v} reads, 1 MiB + buffer, {args.read_depth} in flight", rd, "MiB/s", ">=0.5x", med(rd) / sha, med(rd) / sha >= 0.5)
        row(f"  server CPU s", [x["read_srv"] for x in rs], "s", "")
        rdc = [mb / x["read_srv"] for x in rs]
        row(f"  MiB per server CPU second", rdc, "MiB", ">=0.5x", med(rdc) / sha)
        row(f"  client CPU s", [x["read_cli"] for x in rs], "s", "")
        if v == 2 and ssl512:
            row(f"  V2 reads against openssl sha512", rd, "MiB/s", "", med(rd) / med(ssl512))
    if lat:
        allp = [x for r in lat for x in r["port"]]
        allw = [x for r in lat for x in r["opwait"]]
        p99s = [percentile(r["port"], 99) for r in lat]
        row("AddData -> read's completion (port) p50", [med(r["port"]) for r in lat], "ms", "")
        row("AddData -> read's completion (port) p99", p99s, "ms", "<=2 ms", None, med(p99s) <= 2)
        row("  pooled over the rounds: p99", [percentile(allp, 99)], "ms", "<=2 ms", None, percentile(allp, 99) <= 2)
        row("AddData -> read's answer (opwait) p50", [med(r["opwait"]) for r in lat], "ms", "")
        row("AddData -> read's answer (opwait) p99", [percentile(r["opwait"], 99) for r in lat], "ms", "<=2 ms")
        row("AddData's own answer p50", [med(r["add"]) for r in lat], "ms", "")
        row("GET /healthz round trip p50 (the floor)", [med(r["floor"]) for r in lat], "ms", "")
        row("GET /healthz round trip p99", [percentile(r["floor"], 99) for r in lat], "ms", "")
        print(f"{'  pooled samples':44} port p50 {med(allp):.3f} p99 {percentile(allp, 99):.3f} max {max(allp):.3f} ms (n={len(allp)}); "
              f"opwait p50 {med(allw):.3f} p99 {percentile(allw, 99):.3f} ms (n={len(allw)})")
    if mem:
        g = [x["growth"] for x in mem]
        row(f"RSS growth during {args.memsize // MiB} MiB AddData", g, "MiB", "<=64 MiB", None, med(g) <= 64)
        row("  baseline RSS", [x["baseline"] for x in mem], "MiB", "")
        row("  peak RSS", [x["peak"] for x in mem], "MiB", "")


if __name__ == "__main__":
    main()
