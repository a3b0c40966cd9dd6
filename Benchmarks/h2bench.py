#!/usr/bin/env python3
"""HTTP/2 cleartext benchmarks of peerdistd, in one sitting.

  python3 Benchmarks/h2bench.py                     # both scenarios, 3 rounds
  python3 Benchmarks/h2bench.py --only h2load -n 200000
  python3 Benchmarks/h2bench.py --only parked --streams 1000

h2load: `h2load -c8 -m32 -n N` on GET /healthz against peerdistd (release build, default
settings) and against nginx's h2c anchor (../shared/anchors/nginx/nginx.conf, run from a copy in
a temporary folder on free ports), rounds interleaved; prints medians and the ratio.

parked: resident memory per parked HTTP/2 long-poll stream. Opens HTTP/2 connections (as few as
the server's SETTINGS_MAX_CONCURRENT_STREAMS allows: one when it is at least --streams), reads
the daemon's VmRSS, parks --streams completion long-polls on them (raw frames, HPACK literals),
waits for `peerdist_parked_waiters` to reach that count, reads VmRSS again: the delta over the
streams is the cost of a parked stream (connections excluded). A fresh daemon per round.

Needs h2load (nghttp2-client) and nginx (apt-get install nghttp2-client nginx). Everything runs on
127.0.0.1 and stops by itself.
"""
import argparse, json, os, re, shutil, signal, socket, statistics, struct, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANCHORS = os.path.join(os.path.dirname(ROOT), "shared", "anchors")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port}")


def http(port, method, path, body=b""):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
              f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return data.split(b"\r\n\r\n", 1)[1].decode()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Proc:
    def __init__(self, name, port, proc):
        self.name, self.port, self.proc = name, port, proc

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def build_peerdist():
    subprocess.run(["swift", "build", "-c", "release", "--product", "peerdistd"], cwd=ROOT, check=True)
    return os.path.join(ROOT, ".build", "release", "peerdistd")


def start_peerdist(binary, tmp):
    port = free_port()
    data = tempfile.mkdtemp(dir=tmp)
    os.chmod(data, 0o700)
    # Default settings, the default log level (info: one line per request, to a discarded stderr).
    proc = subprocess.Popen([binary, "--port", str(port), "--data-dir", data],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    line = proc.stdout.readline().decode().strip()
    assert line.startswith("listening on "), line
    return Proc("peerdist", port, proc)


def start_nginx(tmp):
    if not shutil.which("nginx"):
        print("nginx is not installed (apt-get install nginx): no anchor", file=sys.stderr)
        return None
    conf = open(os.path.join(ANCHORS, "nginx", "nginx.conf")).read()
    port1, port2 = free_port(), free_port()
    conf = conf.replace("127.0.0.1:18083", f"127.0.0.1:{port1}").replace("127.0.0.1:18084", f"127.0.0.1:{port2}")
    d = os.path.join(tmp, "nginx")
    for sub in ("logs", "tmp"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(conf)
    proc = subprocess.Popen(["nginx", "-p", d, "-c", "nginx.conf"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port2)
    return Proc("nginx", port2, proc)


def h2load(port, n):
    out = subprocess.run(["h2load", "-c8", "-m32", "-n", str(n), f"http://127.0.0.1:{port}/healthz"],
                         capture_output=True, text=True, timeout=600).stdout
    rate = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    done = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded", out)
    status = re.search(r"status codes: (\d+) 2xx", out)
    if not rate or not done or int(done.group(1)) != n or not status or int(status.group(1)) != n:
        raise RuntimeError(f"h2load failed:\n{out}")
    return float(rate.group(1))


def scenario_h2load(binary, tmp, rounds, n):
    targets = [t for t in (start_peerdist(binary, tmp), start_nginx(tmp)) if t]
    results = {t.name: [] for t in targets}
    try:
        for t in targets:
            h2load(t.port, max(n // 10, 1000))  # warm-up
        for r in range(rounds):
            for t in targets:
                rate = h2load(t.port, n)
                results[t.name].append(rate)
                print(f"  round {r + 1} {t.name:<9} {rate:>10.0f} req/s", file=sys.stderr)
    finally:
        for t in targets:
            t.stop()
    print(f"\nh2load -c8 -m32 -n {n} GET /healthz (median of {rounds})")
    med = {name: statistics.median(v) for name, v in results.items()}
    for name, v in results.items():
        print(f"  {name:<9} {med[name]:>10.0f} req/s   rounds {', '.join(f'{x:.0f}' for x in v)}")
    if "nginx" in med:
        ratio = med["peerdist"] / med["nginx"]
        print(f"  peerdist / nginx = {ratio:.2f}x   (goal >= 0.5x, target 0.8x)")
    return med


# --- A minimal HTTP/2 client for parking streams: raw frames, HPACK literals, no Huffman. ---

def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def literal(name, value):
    name, value = name.encode(), value.encode()
    assert len(name) < 127 and len(value) < 127
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


class ParkingConnection:
    """Sends requests, acknowledges SETTINGS and PING, counts answers per stream."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.lock = threading.Lock()
        self.max_streams = None
        self.settled = threading.Event()
        self.answered = set()
        self.goaway = None
        self.next_id = 1
        # SETTINGS: INITIAL_WINDOW_SIZE 16 MiB, ENABLE_PUSH 0; a large connection window.
        self.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, struct.pack(">HI", 4, 1 << 24) + struct.pack(">HI", 2, 0))
                  + frame(8, 0, 0, struct.pack(">I", (1 << 30))))
        self.reader = threading.Thread(target=self.read_loop, daemon=True)
        self.reader.start()
        if not self.settled.wait(10):
            raise RuntimeError("no SETTINGS from the server")

    def send(self, data):
        with self.lock:
            self.sock.sendall(data)

    def read_loop(self):
        buf = b""
        try:
            while True:
                chunk = self.sock.recv(1 << 16)
                if not chunk:
                    return
                buf += chunk
                while len(buf) >= 9:
                    length = int.from_bytes(buf[0:3], "big")
                    if len(buf) < 9 + length:
                        break
                    ftype, flags, stream = buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
                    payload, buf = buf[9:9 + length], buf[9 + length:]
                    if ftype == 4 and not flags & 1:  # SETTINGS
                        for i in range(0, len(payload), 6):
                            sid, value = struct.unpack(">HI", payload[i:i + 6])
                            if sid == 3:
                                self.max_streams = value
                        self.send(frame(4, 1, 0))
                        self.settled.set()
                    elif ftype == 6 and not flags & 1:  # PING
                        self.send(frame(6, 1, 0, payload))
                    elif ftype == 7:
                        self.goaway = payload
                    elif ftype in (0, 1) and flags & 1 or ftype == 3:  # END_STREAM or RST_STREAM
                        self.answered.add(stream)
        except OSError:
            return

    def park(self, path, count):
        out = b""
        for _ in range(count):
            block = literal(":method", "GET") + literal(":scheme", "http") + literal(":path", path) + literal(":authority", "127.0.0.1")
            out += frame(1, 0x5, self.next_id, block)  # END_STREAM | END_HEADERS
            self.next_id += 2
        self.send(out)

    def close(self):
        self.sock.close()


def parked_waiters(port):
    text = http(port, "GET", "/metrics")
    m = re.search(r"^peerdist_parked_waiters(?:\{[^}]*\})? (\d+)", text, re.M)
    return int(m.group(1)) if m else -1


def settle_rss(pid, seconds=1.0):
    """The median of a few VmRSS reads over `seconds`."""
    reads = []
    for _ in range(5):
        reads.append(rss_kib(pid))
        time.sleep(seconds / 5)
    return statistics.median(reads)


def scenario_parked(binary, tmp, rounds, streams):
    per_stream = []
    for r in range(rounds):
        d = start_peerdist(binary, tmp)
        try:
            pid = d.proc.pid
            h = json.loads(http(d.port, "POST", "/instances", b'{"version":2}'))["handle"]
            path = f"/instances/{h}/ports/default/completions?timeoutMs=50000&max=1"
            first = ParkingConnection(d.port)
            limit = first.max_streams or 100
            per_conn = min(streams, limit)
            conns = [first] + [ParkingConnection(d.port) for _ in range(-(-streams // per_conn) - 1)]
            parked_waiters(d.port)  # warm up the metrics route
            base = settle_rss(pid)
            left = streams
            for c in conns:
                c.park(path, min(per_conn, left))
                left -= min(per_conn, left)
            deadline = time.time() + 60
            while parked_waiters(d.port) < streams:
                if time.time() > deadline:
                    raise RuntimeError(f"only {parked_waiters(d.port)} of {streams} parked")
                time.sleep(0.05)
            parked = settle_rss(pid)
            answered = sum(len(c.answered) for c in conns)
            if answered:
                raise RuntimeError(f"{answered} parked streams were answered early")
            kib = (parked - base) / streams
            per_stream.append(kib)
            print(f"  round {r + 1}: {streams} streams on {len(conns)} connection(s) "
                  f"(server allows {limit} per connection): VmRSS {base} -> {parked} KiB, {kib:.2f} KiB/stream", file=sys.stderr)
            for c in conns:
                c.close()
        finally:
            d.stop()
    med = statistics.median(per_stream)
    print(f"\nresident memory per parked HTTP/2 long-poll stream ({streams} parked, median of {rounds}): "
          f"{med:.2f} KiB   rounds {', '.join(f'{x:.2f}' for x in per_stream)}   (goal <= 4 KiB)")
    return med


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("-n", type=int, default=300_000, help="requests per h2load round")
    p.add_argument("--streams", type=int, default=1000)
    p.add_argument("--only", default="h2load,parked")
    args = p.parse_args()
    only = set(args.only.split(","))
    binary = build_peerdist()
    with tempfile.TemporaryDirectory() as tmp:
        if "h2load" in only:
            scenario_h2load(binary, tmp, args.rounds, args.n)
        if "parked" in only:
            scenario_parked(binary, tmp, args.rounds, args.streams)


if __name__ == "__main__":
    main()
