#!/usr/bin/env python3
"""One principal floods its quotas; another's cancel latency must not suffer (issue 10).

  python3 Benchmarks/quotaload.py                  # 3 rounds of 1,000 cancels each
  python3 Benchmarks/quotaload.py --rounds 5 --samples 1000

Starts peerdistd (release build) with a tokens file (alice, bob) and an admin token, quotas as
given below, and a fault delay that keeps appends and completes pending. Each round measures
bob's cancel route, `DELETE /instances/{h}/content/{id}/operations/{op}` on a pending complete,
first alone, then while alice, from another process, floods her quotas: she keeps starting
instances, appending to a stream (each append stays pending) and parking completion long-polls,
without pause, far past each quota, so that the server answers her 429 all along. Prints bob's
p50 and p99 both ways and the ratio (goal: p99 loaded <= 1.5x unloaded), medians over rounds.
Everything runs on 127.0.0.1 and stops by itself.
"""
import argparse, json, multiprocessing, os, socket, statistics, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from httpclient import ROOT, Conn, Server, b64  # noqa: E402

ALICE = "alice-bench-token-0123456789"
BOB = "bob-bench-token-0123456789ab"
ADMIN = "admin-bench-token-0123456789"
QUOTAS = {"--max-instances-per-principal": 64, "--max-pending-per-principal": 2000, "--max-waiters-per-principal": 512}


def auth(token):
    return {"Authorization": f"Bearer {token}"}


def flood(host, port, stop, counts):
    """Alice: three loops hammering her quotas until `stop` is set (runs in its own process)."""
    def count(key):
        counts[key] = counts.get(key, 0) + 1

    setup = Conn(host, port)
    # The instances the append and long-poll loops use, made before the instance loop fills her quota.
    append_instance, poll_instance = (
        setup.request("POST", "/instances", {"version": 2}, headers=auth(ALICE)).json()["handle"] for _ in range(2))

    def instances():
        c = Conn(host, port)
        while not stop.is_set():
            count("instances_" + str(c.request("POST", "/instances", {"version": 2}, headers=auth(ALICE)).status))

    def appends():
        c, h, cid = Conn(host, port), append_instance, b64(b"alice-flood")
        s = c.request("POST", f"/instances/{h}/content/{cid}/streams", {"version": 2}, headers=auth(ALICE)).json()["stream"]
        while not stop.is_set():
            count("appends_" + str(c.request("POST", f"/instances/{h}/content/{cid}/streams/{s}/data", b"x", headers=auth(ALICE)).status))

    def long_polls():
        h = poll_instance
        held = []
        raw = Conn.encode("GET", f"/instances/{h}/ports/default/completions?timeoutMs=55000", headers=auth(ALICE))
        while not stop.is_set():
            # A batch of polls at once; those answered within 250 ms (429 past the quota, which
            # the server holds for --too-many-requests-delay, 100 ms by default) close, the others
            # are parked and kept.
            batch = []
            for _ in range(64):
                s = socket.create_connection((host, port))
                s.sendall(raw)
                batch.append(s)
            time.sleep(0.25)
            for s in batch:
                s.setblocking(False)
                try:
                    answer = s.recv(4096)
                    count("polls_" + (answer.split(b" ", 2)[1].decode() if answer else "closed"))
                    s.close()
                except BlockingIOError:
                    held.append(s)
                    count("polls_parked")
        for s in held:
            s.close()

    threads = [threading.Thread(target=f) for f in (instances, appends, long_polls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def flood_process(host, port, stop, out):
    counts = {}
    flood(host, port, stop, counts)
    out.put(counts)


def bob_cancels(host, port, samples):
    """Bob's cancel latencies (seconds) on pending completes, each on a fresh stream."""
    c = Conn(host, port)
    h = c.request("POST", "/instances", {"version": 2}, headers=auth(BOB)).json()["handle"]
    latencies = []
    for i in range(samples):
        cid = b64(f"bob-{i}".encode())
        s = c.request("POST", f"/instances/{h}/content/{cid}/streams", {"version": 2}, headers=auth(BOB)).json()["stream"]
        r = c.request("POST", f"/instances/{h}/content/{cid}/streams/{s}/complete?op=c{i}", headers=auth(BOB))
        assert r.status == 202, r
        t0 = time.perf_counter()
        r = c.request("DELETE", f"/instances/{h}/content/{cid}/operations/c{i}", headers=auth(BOB))
        latencies.append(time.perf_counter() - t0)
        assert r.status == 200, r
        c.request("DELETE", f"/instances/{h}/content/{cid}/streams/{s}", headers=auth(BOB))
    c.request("DELETE", f"/instances/{h}", headers=auth(BOB))
    return latencies


def parked(c):
    text = c.request("GET", "/metrics").body.decode()
    for line in text.splitlines():
        if line.startswith("peerdist_parked_waiters"):
            return float(line.split()[-1])
    return 0


def percentile(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--samples", type=int, default=1000)
    a = ap.parse_args()
    subprocess.run(["swift", "build", "-c", "release", "--product", "peerdistd"], cwd=ROOT, check=True)
    tmp = tempfile.mkdtemp(prefix="peerdist-quota-")
    tokens = os.path.join(tmp, "tokens")
    with open(tokens, "w") as f:
        f.write(f"alice {ALICE}\nbob {BOB}\n")
    os.chmod(tokens, 0o600)
    args = ["--tokens-file", tokens, "--admin-token", ADMIN, "--log-level", "warning"]
    for flag, value in QUOTAS.items():
        args += [flag, str(value)]
    rows = []
    for r in range(a.rounds):
        server = Server(args=args)
        try:
            c = Conn(server.host, server.port)
            faults = {"completionDelayMs": 600000, "kinds": ["publishAddToStream", "publishCompleteStream"]}
            assert c.request("PUT", "/admin/faults", faults, headers=auth(ADMIN)).status == 200
            bob_cancels(server.host, server.port, 50)  # warm-up
            alone = bob_cancels(server.host, server.port, a.samples)
            stop, out = multiprocessing.Event(), multiprocessing.Queue()
            p = multiprocessing.Process(target=flood_process, args=(server.host, server.port, stop, out))
            p.start()
            # Measure once the flood holds its long-poll quota (and so, by then, the others).
            deadline = time.time() + 60
            while parked(c) < QUOTAS["--max-waiters-per-principal"]:
                if time.time() > deadline:
                    raise SystemExit("the flood did not reach its long-poll quota")
                time.sleep(0.1)
            time.sleep(1)
            loaded = bob_cancels(server.host, server.port, a.samples)
            stop.set()
            counts = out.get(timeout=60)
            p.join(30)
            row = (percentile(alone, 50), percentile(alone, 99), percentile(loaded, 50), percentile(loaded, 99))
            rows.append(row)
            print(f"round {r + 1}: bob p50/p99 alone {row[0] * 1e3:.3f}/{row[1] * 1e3:.3f} ms, "
                  f"while alice floods {row[2] * 1e3:.3f}/{row[3] * 1e3:.3f} ms; alice's answers {json.dumps(counts, sort_keys=True)}",
                  file=sys.stderr)
            refused = sum(v for k, v in counts.items() if k.endswith("_429"))
            if not refused:
                raise SystemExit("alice was never refused: the flood did not reach her quotas")
        finally:
            server.stop()
    med = [statistics.median(x[i] for x in rows) for i in range(4)]
    print(f"\nbob's cancel latency, medians of {a.rounds} rounds of {a.samples}: "
          f"alone p50 {med[0] * 1e3:.3f} ms p99 {med[1] * 1e3:.3f} ms; "
          f"alice flooding p50 {med[2] * 1e3:.3f} ms p99 {med[3] * 1e3:.3f} ms; "
          f"p99 ratio {med[3] / med[1]:.2f}x (goal <= 1.5x)")
    print(f"quotas: {' '.join(f'{k} {v}' for k, v in QUOTAS.items())}")


if __name__ == "__main__":
    main()
