#!/usr/bin/env python3
"""Benchmarks PeerDist against the anchors in ../shared/anchors, in the same sitting.

  python3 Benchmarks/bench.py                 # every scenario, 3 rounds
  python3 Benchmarks/bench.py --rounds 5 --only healthz,delete
  python3 Benchmarks/bench.py --only idle     # memory and threads per idle connection
  python3 Benchmarks/bench.py --baseline 090ee54 --only healthz,delete   # A/B against a revision

Builds peerdistd (release) and the Hummingbird anchor (in .build-anchors/, the anchors folder
is read-only), starts them on loopback, runs wrk -t1 -c64 against the same routes, and prints
medians and ratios, and the server's CPU time per request (from /proc, user plus system). nginx
is included when it is installed. --baseline REV also builds peerdistd at that git revision (a
detached worktree in .build-anchors/) and runs it in the same interleaved rounds. Needs wrk
(apt-get install wrk).
Everything runs on 127.0.0.1 and stops by itself.
"""
import argparse, json, os, re, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANCHORS = os.path.join(os.path.dirname(ROOT), "shared", "anchors")
SCRATCH = os.path.join(ROOT, ".build-anchors")


def run(cmd, **kw):
    print("+", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True, **kw)


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


class Target:
    def __init__(self, name, port, proc, delete_path):
        self.name, self.port, self.proc, self.delete_path = name, port, proc, delete_path

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def start_peerdist(tmp, revision=None):
    tree, name = ROOT, "peerdist"
    if revision:
        tree, name = os.path.join(SCRATCH, f"baseline-{revision}"), f"peerdist@{revision}"
        if not os.path.exists(tree):
            run(["git", "worktree", "add", "--detach", tree, revision], cwd=ROOT)
    run(["swift", "build", "-c", "release", "--product", "peerdistd"], cwd=tree)
    binary = os.path.join(tree, ".build", "release", "peerdistd")
    port = free_port()
    env = dict(os.environ, PEERDIST_LOG_LEVEL="warning")
    data = os.path.join(tmp, f"data-{name}")
    os.makedirs(data, mode=0o700)
    proc = subprocess.Popen([binary, "--port", str(port), "--data-dir", data],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    line = proc.stdout.readline().decode().strip()
    assert line.startswith("listening on "), line
    # A real instance, so that the DELETE reaches the engine's lookup, not the handle check.
    h = json.loads(http("127.0.0.1", port, "POST", "/instances", b'{"version":2}'))["handle"]
    return Target(name, port, proc, f"/instances/{h}/content/YzE/operations/op_missing")


def start_hummingbird():
    src = os.path.join(ANCHORS, "hummingbird", "HBAnchor")
    dst = os.path.join(SCRATCH, "HBAnchor")
    if not os.path.exists(os.path.join(dst, "Package.swift")):
        shutil.copytree(src, dst, dirs_exist_ok=True)
    run(["swift", "build", "-c", "release"], cwd=dst)
    port = free_port()
    proc = subprocess.Popen([os.path.join(dst, ".build", "release", "HBAnchor")],
                            env=dict(os.environ, ANCHOR_PORT=str(port)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return Target("hummingbird", port, proc, "/instances/h1/content/YzE/operations/op1")


def start_nginx(tmp):
    if not shutil.which("nginx"):
        return None
    conf = open(os.path.join(ANCHORS, "nginx", "nginx.conf")).read()
    port, port2 = free_port(), free_port()
    conf = conf.replace("127.0.0.1:18083", f"127.0.0.1:{port}").replace("127.0.0.1:18084", f"127.0.0.1:{port2}")
    d = os.path.join(tmp, "nginx")
    os.makedirs(os.path.join(d, "logs"), exist_ok=True)
    os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(conf)
    proc = subprocess.Popen(["nginx", "-p", d, "-c", "nginx.conf"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return Target("nginx", port, proc, "/instances/h1/content/YzE/operations/op1")


def http(host, port, method, path, body=b""):
    s = socket.create_connection((host, port))
    s.sendall(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return data.split(b"\r\n\r\n", 1)[1].decode()


def wrk(port, path, seconds, method="GET"):
    cmd = ["wrk", "-t1", "-c64", f"-d{seconds}s", f"http://127.0.0.1:{port}{path}"]
    if method == "DELETE":
        cmd[1:1] = ["-s", os.path.join(ANCHORS, "scripts", "delete.lua")]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return float(m.group(1)), int(non2xx.group(1)) if non2xx else 0


def cpu_seconds(pid):
    """User plus system CPU time of a process so far (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle(target, count):
    script = os.path.join(ANCHORS, "scripts", "conns.py")
    out = subprocess.run([sys.executable, script, "--port", str(target.port), "--pid", str(target.proc.pid),
                          "--count", str(count), "--mode", "idle", "--settle", "1"], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--only", default="healthz,delete,idle")
    ap.add_argument("--idle-count", type=int, default=5000)
    ap.add_argument("--baseline", help="a git revision of peerdistd to run beside the working tree")
    a = ap.parse_args()
    only = set(a.only.split(","))
    tmp = tempfile.mkdtemp(prefix="peerdist-bench-")
    targets = []
    try:
        baseline = [start_peerdist(tmp, a.baseline)] if a.baseline else []
        targets = [t for t in [start_peerdist(tmp)] + baseline + [start_hummingbird(), start_nginx(tmp)] if t]
        results, cpu = {}, {}
        for scenario, method in (("healthz", "GET"), ("delete", "DELETE")):
            if scenario not in only:
                continue
            for t in targets:
                path = "/healthz" if scenario == "healthz" else t.delete_path
                wrk(t.port, path, 2, method)  # warm-up
            for r in range(a.rounds):
                for t in targets:  # interleaved, so drift hits everyone alike
                    path = "/healthz" if scenario == "healthz" else t.delete_path
                    before = cpu_seconds(t.proc.pid) if t.proc else 0
                    rps, non2xx = wrk(t.port, path, a.seconds, method)
                    used = (cpu_seconds(t.proc.pid) if t.proc else 0) - before
                    results.setdefault((scenario, t.name), []).append(rps)
                    # CPU per request, in microseconds (nginx's workers are other processes: not counted).
                    cpu.setdefault((scenario, t.name), []).append(1e6 * used / max(rps * a.seconds, 1))
                    print(f"{scenario} round {r + 1} {t.name}: {rps:.0f} req/s (non-2xx {non2xx})", file=sys.stderr)
        print(f"\n{'scenario':<10} {'target':<18} {'median req/s':>13}  {'vs hummingbird':>15}  {'CPU us/req':>10}  rounds")
        for (scenario, name), values in results.items():
            med = statistics.median(values)
            hb = statistics.median(results.get((scenario, "hummingbird"), [med]))
            us = "-" if name == "nginx" else f"{statistics.median(cpu[(scenario, name)]):.1f}"
            print(f"{scenario:<10} {name:<18} {med:>13.0f}  {med / hb:>14.2f}x  {us:>10}  {' '.join(f'{v:.0f}' for v in values)}")
        if "idle" in only:
            print(f"\nidle keep-alive connections held: {a.idle_count}")
            for t in targets:
                if t.name == "nginx":
                    continue
                r = idle(t, a.idle_count)
                print(f"{t.name:<12} {r['kib_per_conn']:>6.2f} KiB/conn  threads {r['threads_held']}  "
                      f"rss before/held/after {r['rss_kib_before']}/{r['rss_kib_held']}/{r['rss_kib_after']} KiB  failed {r['failed_to_open']}")
    finally:
        for t in targets:
            t.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
