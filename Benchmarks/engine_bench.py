#!/usr/bin/env python3
"""Operation-engine benchmarks of peerdistd, on loopback, bounded in count and time.

  python3 Benchmarks/engine_bench.py                      # every scenario
  python3 Benchmarks/engine_bench.py --only longpoll,cancel
  python3 Benchmarks/engine_bench.py --only publish --publish-gib 1

Scenarios:
  longpoll  N parked long-polls on one completion port (default 10,000): threads and resident
            memory per waiter (../shared/anchors/scripts/conns.py), then all answered.
  cancel    with 1,000 operations held pending (a fault delay) and one waiter parked on each,
            the time from sending DELETE to that waiter's answer: p50 / p99.
  publish   end-to-end publishing of a V1 stream over HTTP/1.1 (default 1 GiB), in MB/s and as a
            ratio of single-core `openssl speed -evp sha256` measured in the same run; resident
            memory growth while publishing 2 GiB; cancel-to-answer latency of a running append,
            p50 / p99 over 100 tries.
Builds peerdistd (release) first. Raise the open-files limit for longpoll (the script tries).
"""
import argparse, base64, json, os, re, resource, select, socket, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANCHORS = os.path.join(os.path.dirname(ROOT), "shared", "anchors")


def start_server(tmp, *extra):
    subprocess.run(["swift", "build", "-c", "release", "--product", "peerdistd"], cwd=ROOT, check=True)
    binary = os.path.join(ROOT, ".build", "release", "peerdistd")
    proc = subprocess.Popen([binary, "--port", "0", "--data-dir", os.path.join(tmp, "data"), "--log-level", "warning",
                             "--max-waiters", "20000", "--max-connections", "30000", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    line = proc.stdout.readline().decode().strip()
    assert line.startswith("listening on "), line
    return proc, int(line.rsplit(":", 1)[1])


class Conn:
    """A keep-alive HTTP/1.1 client on a blocking socket."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send(self, method, path, body=b"", headers=()):
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
        for k, v in headers:
            head += f"{k}: {v}\r\n"
        self.s.sendall(head.encode() + b"\r\n" + body)

    def read(self):
        while b"\r\n\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise OSError("closed")
            self.buf += d
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        status = int(head.split(b" ")[1])
        m = re.search(rb"(?i)content-length: (\d+)", head)
        n = int(m.group(1)) if m else 0
        while len(rest) < n:
            d = self.s.recv(65536)
            if not d:
                raise OSError("closed")
            rest += d
        self.buf = rest[n:]
        return status, rest[:n]

    def call(self, method, path, body=b"", headers=()):
        self.send(method, path, body, headers)
        status, data = self.read()
        return status, (json.loads(data) if data.startswith(b"{") else data)


def b64id(text):
    """A content identifier in the path: base64url without padding."""
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1])


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def longpoll(port, pid, count):
    c = Conn(port)
    _, inst = c.call("POST", "/instances", b"{}", [("Content-Type", "application/json")])
    h = inst["handle"]
    path = f"/instances/{h}/ports/default/completions?timeoutMs=20000"
    out = subprocess.run([sys.executable, os.path.join(ANCHORS, "scripts", "conns.py"), "--port", str(port), "--pid", str(pid),
                          "--count", str(count), "--mode", "longpoll", "--path", path, "--settle", "2"],
                         check=True, capture_output=True, text=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    print(f"longpoll: {r['held']} parked on one port: {r['kib_per_conn']:.2f} KiB/waiter, threads {r['threads_held']}, "
          f"answered 200: {r['longpolls_answered_200']}, failed to open {r['failed_to_open']}, "
          f"rss before/held/after {r['rss_kib_before']}/{r['rss_kib_held']}/{r['rss_kib_after']} KiB")


def cancel_latency(port, count):
    c = Conn(port)
    js = [("Content-Type", "application/json")]
    _, inst = c.call("POST", "/instances", b"{}", js)
    h = inst["handle"]
    c.call("PUT", "/admin/faults", b'{"completionDelayMs":600000,"kinds":["publishAddToStream"]}', js)
    _, st = c.call("POST", f"/instances/{h}/content/YmVuY2g/streams", b"{}", js)
    s = st["stream"]
    for i in range(count):
        status, _ = c.call("POST", f"/instances/{h}/content/YmVuY2g/streams/{s}/data?op=o{i}", b"x",
                           [("Content-Type", "application/octet-stream")])
        assert status == 202, status
    waiters = []
    for i in range(count):
        w = Conn(port)
        w.send("GET", f"/instances/{h}/content/YmVuY2g/operations/o{i}?timeoutMs=50000")
        waiters.append(w)
    time.sleep(1.0)
    lat = []
    for i in range(count):
        t0 = time.perf_counter()
        c.send("DELETE", f"/instances/{h}/content/YmVuY2g/operations/o{i}")
        status, body = waiters[i].read()
        lat.append((time.perf_counter() - t0) * 1000)
        assert status == 200 and b'"canceled"' in body, body
        st2, _ = c.read()
        assert st2 == 200
    for w in waiters:
        w.s.close()
    c.call("PUT", "/admin/faults", b"{}", js)
    print(f"cancel: {count} parked operation waiters; DELETE sent -> waiter answered: "
          f"p50 {statistics.median(lat):.3f} ms, p99 {pct(lat, 99):.3f} ms, max {max(lat):.3f} ms")


def openssl_sha256_mbps():
    out = subprocess.run(["openssl", "speed", "-evp", "sha256", "-bytes", "16384", "-seconds", "3"],
                         capture_output=True, text=True).stdout
    line = [l for l in out.splitlines() if l.lower().startswith("sha256")][-1]
    kbps = float(line.split()[-1].rstrip("k"))
    return kbps * 1000 / 1e6


def publish(port, pid, gib, rss_gib, tries):
    c = Conn(port)
    js = [("Content-Type", "application/json")]
    _, inst = c.call("POST", "/instances", b"{}", js)
    h = inst["handle"]
    chunk = os.urandom(1 << 20)
    view = memoryview(chunk)

    def publish_once(cid, total, sample_rss=False):
        _, st = c.call("POST", f"/instances/{h}/content/{cid}/streams", json.dumps({"contentLength": total, "version": 1}).encode(), js)
        s = st["stream"]
        base = rss_kib(pid)
        peak = base
        t0 = time.perf_counter()
        c.s.sendall(f"POST /instances/{h}/content/{cid}/streams/{s}/data HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {total}\r\n"
                    f"Content-Type: application/octet-stream\r\nPrefer: wait=55\r\n\r\n".encode())
        sent = 0
        while sent < total:
            n = min(len(chunk), total - sent)
            c.s.sendall(view[:n])
            sent += n
            if sample_rss and sent % (64 << 20) == 0:
                peak = max(peak, rss_kib(pid))
        status, body = c.read()
        elapsed = time.perf_counter() - t0
        assert status == 200 and json.loads(body)["state"] == "completed", body
        status, body = c.call("POST", f"/instances/{h}/content/{cid}/streams/{s}/complete", b"", [("Prefer", "wait=55")])
        assert status == 200, body
        return elapsed, peak - base

    ssl = openssl_sha256_mbps()
    rates = []
    for r in range(3):
        elapsed, _ = publish_once(b64id(f"publish-{r}"), gib << 30)
        rates.append((gib << 30) / elapsed / 1e6)
    med = statistics.median(rates)
    print(f"publish: {gib} GiB V1 over HTTP/1.1: median {med:.0f} MB/s ({' '.join(f'{x:.0f}' for x in rates)}); "
          f"openssl speed -evp sha256 (16 KiB, 1 core): {ssl:.0f} MB/s; ratio {med / ssl:.2f}x")
    _, growth = publish_once(b64id("rss"), rss_gib << 30, sample_rss=True)
    print(f"publish: resident memory growth while publishing {rss_gib} GiB: {growth / 1024:.1f} MiB")

    lat = []
    canceller = Conn(port)
    for i in range(tries):
        cid = b64id(f"cancel-{i}")
        status, st = c.call("POST", f"/instances/{h}/content/{cid}/streams", b"{}", js)
        assert status == 201, st
        s = st["stream"]
        c.s.sendall(f"POST /instances/{h}/content/{cid}/streams/{s}/data?op=run HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {1 << 34}\r\n"
                    f"Content-Type: application/octet-stream\r\n\r\n".encode())
        for _ in range(8):
            c.s.sendall(chunk)
        t0 = time.perf_counter()
        status, body = canceller.call("DELETE", f"/instances/{h}/content/{cid}/operations/run")
        lat.append((time.perf_counter() - t0) * 1000)
        assert status == 200, body
        c.s.close()
        c = Conn(port)
    print(f"publish: cancel of a running append, DELETE -> answer: p50 {statistics.median(lat):.2f} ms, "
          f"p99 {pct(lat, 99):.2f} ms over {tries} tries")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="longpoll,cancel,publish")
    ap.add_argument("--waiters", type=int, default=10_000)
    ap.add_argument("--cancels", type=int, default=1_000)
    ap.add_argument("--publish-gib", type=int, default=1)
    ap.add_argument("--rss-gib", type=int, default=2)
    ap.add_argument("--cancel-tries", type=int, default=100)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    only = set(a.only.split(","))
    tmp = tempfile.mkdtemp(prefix="peerdist-engine-bench-")
    proc, port = start_server(tmp)
    try:
        if "longpoll" in only:
            longpoll(port, proc.pid, a.waiters)
        if "cancel" in only:
            cancel_latency(port, a.cancels)
        if "publish" in only:
            publish(port, proc.pid, a.publish_gib, a.rss_gib, a.cancel_tries)
    finally:
        proc.terminate()
        proc.wait(15)


if __name__ == "__main__":
    main()
