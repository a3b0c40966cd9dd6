#!/usr/bin/env python3
"""CPU per request by log level: peerdistd at the default `info` against `--log-level warning`.

  python3 Benchmarks/logcost.py                  # 3 interleaved rounds of wrk -t1 -c64 -d5s
  python3 Benchmarks/logcost.py --rounds 5 --path /healthz --goal 1.15

Starts the same binary twice in the same run (one at `info`, stderr to a file as a daemon's
would be; one at `warning`), drives GET /healthz on each in interleaved rounds, and measures the
server's CPU (utime + stime from /proc/PID/stat) before and after each round, divided by the
requests wrk completed. Prints the per-round figures, the medians and the ratio info/warning;
exits 1 when the ratio exceeds --goal (default 1.15). Needs wrk (apt-get install wrk).
"""
import argparse, os, re, shutil, statistics, subprocess, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from httpclient import Conn, Server, DEFAULT_BINARY  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def wrk(server, path, seconds, connections):
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", f"http://{server.host}:{server.port}{path}"],
                         check=True, capture_output=True, text=True).stdout
    m = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return int(m.group(1)), int(non2xx.group(1)) if non2xx else 0


def round_cpu(server, path, seconds, connections):
    before = server.cpu_ticks()
    requests, bad = wrk(server, path, seconds, connections)
    after = server.cpu_ticks()
    if bad:
        raise SystemExit(f"{bad} non-2xx answers from {path}")
    return (after - before) / TICK * 1e6 / requests, requests  # microseconds of CPU per request


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=DEFAULT_BINARY)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--path", default="/healthz")
    ap.add_argument("--goal", type=float, default=1.15)
    ap.add_argument("--log-format", default="text", choices=["text", "json"])
    a = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    fmt = ["--log-format", a.log_format]
    servers = {"info": Server(a.binary, fmt), "warning": Server(a.binary, fmt + ["--log-level", "warning"])}
    results = {k: [] for k in servers}
    try:
        for name, s in servers.items():  # warm-up
            Conn(s.host, s.port).request("GET", a.path)
            wrk(s, a.path, 1, a.connections)
        for r in range(a.rounds):
            order = list(servers.items()) if r % 2 == 0 else list(reversed(servers.items()))
            for name, s in order:
                us, n = round_cpu(s, a.path, a.seconds, a.connections)
                results[name].append(us)
                print(f"round {r + 1} {name:<8} {n:>8} requests  {us:6.2f} µs CPU/request", flush=True)
        logged = os.path.getsize(servers["info"].errpath)
    finally:
        for s in servers.values():
            s.stop()
    med = {k: statistics.median(v) for k, v in results.items()}
    ratio = med["info"] / med["warning"]
    print(f"\nmedian CPU per request of GET {a.path}: info {med['info']:.2f} µs, warning {med['warning']:.2f} µs")
    print(f"info log written: {logged / 1e6:.1f} MB")
    print(f"ratio info/warning: {ratio:.3f} (goal <= {a.goal})")
    sys.exit(0 if ratio <= a.goal else 1)


if __name__ == "__main__":
    main()
