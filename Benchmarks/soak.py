#!/usr/bin/env python3
"""Soak: ten minutes of mixed load against one peerdistd, with a ledger of every operation.

  python3 Benchmarks/soak.py                  # 10 minutes
  python3 Benchmarks/soak.py --minutes 1      # while developing
  python3 Benchmarks/soak.py --workers 4 --seed 3 --binary .build/debug/peerdistd

Load, from several client threads on keep-alive connections:
  - publishers (--workers): publish streams bound to two ports, append (with and without
    `Prefer: wait`, chosen and server-made operation ids), complete, read the content
    information (whole, and through a handle with reads), unpublish, sometimes close a stream
    with appends pending; each instance is shut down and replaced every few hundred streams,
    once all of its completions have been dequeued;
  - cancels racing completions: /admin/faults delays appends (toggled every 20 s), and an
    append is cancelled at a random moment around its delayed end;
  - completion consumers: one long-polling thread per publisher (timeoutMs 1000, random max),
    plus the publisher's own non-waiting dequeues of its other port;
  - long-polls that time out (an idle port, the instance status) and waits on operations;
  - clients vanishing mid-request (half an upload head or body, a parked long-poll, a JSON body
    cut short; closed with FIN or RST);
  - bad requests (unknown handles, malformed parameters and bodies), which must be 4xx.

Asserts (exit 1 otherwise):
  - zero 5xx answers except the documented 503s (none are provoked here);
  - resident memory flat within 10 % over the last 8 minutes (VmRSS every 10 s; for a shorter
    run, over the part after its first fifth);
  - every operation ends exactly once: no operation id appears twice in the completions
    dequeued, and the result of every completion equals the final result any answer reported;
  - no completion lost: every operation an answer named has its completion dequeued by the end;
  - every answer is one the contract allows for its call (an ended operation stays readable
    after its stream is closed; 202 always means pending; a bad request is 4xx).
"""
import argparse, json, os, random, socket, struct, sys, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from httpclient import Conn, Server, DEFAULT_BINARY, b64  # noqa: E402


class Ledger:
    def __init__(self):
        self.lock = threading.Lock()
        self.started = {}      # op id -> (instance, port) for ops whose completion must arrive
        self.final = {}        # op id -> result code an answer reported as final
        self.seen = {}         # op id -> completion result codes dequeued (any port)
        self.dupes = []
        self.mismatch = []
        self.requests = 0
        self.by_route = {}
        self.sample = {}
        self.status = {}
        self.fivexx = []
        self.unexpected = {}
        self.cancel = {}
        self.vanished = 0
        self.not_pending_202 = []  # API.md: 202 always means pending

    def answer(self, route, r):
        with self.lock:
            self.requests += 1
            self.status[r.status] = self.status.get(r.status, 0) + 1
            self.by_route[(route, r.status)] = self.by_route.get((route, r.status), 0) + 1
            if r.status >= 400 and (route, r.status) not in self.sample:
                self.sample[(route, r.status)] = r.body[:160]
            if r.status >= 500 and r.status != 503:
                self.fivexx.append((route, r.status, r.body[:300]))

    def note_unexpected(self, route, status):
        with self.lock:
            k = (route, status)
            self.unexpected[k] = self.unexpected.get(k, 0) + 1

    def op(self, r, inst, port, must_complete=True):
        doc, status = r.json(), r.status
        if not isinstance(doc, dict) or "id" not in doc:
            return None
        with self.lock:
            if status == 202 and doc.get("state") != "pending":
                self.not_pending_202.append((doc["id"], doc.get("kind"), doc.get("state")))
            if must_complete:
                self.started[doc["id"]] = (inst, port)
            if doc.get("state") not in (None, "pending"):
                self.final_locked(doc["id"], doc["result"]["code"])
        return doc["id"]

    def final_locked(self, op, code):
        prev = self.final.get(op)
        if prev is not None and prev != code:
            self.mismatch.append((op, "answers", prev, code))
        self.final[op] = code

    def final_result(self, op, code):
        with self.lock:
            self.final_locked(op, code)

    def completions(self, batch):
        with self.lock:
            for c in batch:
                op = c["operation"]
                self.seen.setdefault(op, []).append(c["result"]["code"])
                if len(self.seen[op]) > 1:
                    self.dupes.append((op, self.seen[op][:]))

    def outstanding(self, inst=None):
        with self.lock:
            return [op for op, (i, _) in self.started.items() if op not in self.seen and (inst is None or i == inst)]


class Soak:
    def __init__(self, server, args):
        self.server, self.a = server, args
        self.L = Ledger()
        self.stop = threading.Event()
        self.errors = []
        self.rss = []  # (seconds since start, KiB, threads)
        self.t0 = time.monotonic()

    # ---- helpers
    def conn(self):
        return Conn(self.server.host, self.server.port, timeout=30)

    def req(self, c, route, method, path, body=None, headers=None, ctype=None, expect=None):
        r = c.request(method, path, body, headers, ctype)
        self.L.answer(route, r)
        if expect is not None and r.status not in expect:
            self.L.note_unexpected(route, r.status)
        return r

    def dequeue(self, c, h, port, timeout_ms, mx=64):
        r = self.req(c, "dequeue", "GET", f"/instances/{h}/ports/{port}/completions?max={mx}&timeoutMs={timeout_ms}", expect=(200, 404, 410))
        if r.status == 200:
            batch = r.json()["completions"]
            self.L.completions(batch)
            return len(batch)
        return -1

    # ---- publishers
    def consumer(self, h, port, done):
        c = self.conn()
        rng = random.Random()
        while not done.is_set():
            try:
                if self.dequeue(c, h, port, 1000, rng.choice([1, 8, 64, 1024])) < 0:
                    break
            except (OSError, ConnectionError) as e:
                self.errors.append(f"consumer: {e!r}")
                c.close()
        c.close()

    def new_instance(self, c):
        h = self.req(c, "startup", "POST", "/instances", {"version": 2}, expect=(201,)).json()["handle"]
        p2 = self.req(c, "port", "POST", f"/instances/{h}/ports", expect=(201,)).json()["port"]
        done = threading.Event()
        t = threading.Thread(target=self.consumer, args=(h, p2, done), daemon=True)
        t.start()
        return h, p2, done, t

    def retire_instance(self, c, h, p2, done, t):
        deadline = time.monotonic() + 60
        while self.L.outstanding(h) and time.monotonic() < deadline:
            self.dequeue(c, h, "default", 500)
        done.set()
        t.join(5)
        self.req(c, "shutdown", "DELETE", f"/instances/{h}", expect=(200,))

    def publisher(self, wid):
        rng = random.Random(self.a.seed * 1000 + wid)
        c = self.conn()
        h, p2, done, t = self.new_instance(c)
        n = 0
        try:
            while not self.stop.is_set():
                n += 1
                if n % 300 == 0:
                    self.retire_instance(c, h, p2, done, t)
                    h, p2, done, t = self.new_instance(c)
                port = rng.choice(["default", p2])
                roll = rng.random()
                try:
                    if roll < 0.55:
                        self.publish_flow(c, rng, h, port, f"w{wid}-{n}")
                    elif roll < 0.85:
                        self.cancel_race(c, rng, h, port, f"w{wid}-{n}")
                    else:
                        self.close_with_pending(c, rng, h, port, f"w{wid}-{n}")
                    self.dequeue(c, h, "default", 0)
                except (OSError, ConnectionError) as e:
                    self.errors.append(f"publisher {wid}: {e!r}")
                    c.close()
        finally:
            try:
                self.retire_instance(c, h, p2, done, t)
            except (OSError, ConnectionError) as e:
                self.errors.append(f"publisher {wid} retire: {e!r}")
            c.close()

    def open_stream(self, c, rng, h, cid, port, length=0):
        body = {"contentLength": length, "version": rng.choice([1, 2]), "port": port, "key": rng.randrange(1 << 32)}
        r = self.req(c, "publish", "POST", f"/instances/{h}/content/{cid}/streams", body, expect=(201,))
        return r.json()["stream"] if r.status == 201 else None

    def publish_flow(self, c, rng, h, port, tag):
        cid = b64(f"soak-{tag}".encode())
        base = f"/instances/{h}/content/{cid}"
        pieces = [rng.randbytes(rng.choice([1, 100, 4096, 65536, 200000])) for _ in range(rng.randrange(1, 5))]
        declared = sum(map(len, pieces)) if rng.random() < 0.5 else 0
        s = self.open_stream(c, rng, h, cid, port, declared)
        if not s:
            return
        for i, piece in enumerate(pieces):
            q = f"?op={tag}-a{i}" if rng.random() < 0.3 else ""
            hdr = {"Prefer": "wait=2"} if rng.random() < 0.3 else None
            r = self.req(c, "append", "POST", f"{base}/streams/{s}/data{q}", piece, hdr, expect=(200, 202))
            if r.status in (200, 202):
                self.L.op(r, h, port)
        r = self.req(c, "complete", "POST", f"{base}/streams/{s}/complete", headers={"Prefer": "wait=5"}, expect=(200, 202))
        if r.status in (200, 202):
            op = self.L.op(r, h, port)
            if r.status == 202:  # wait for it on its resource
                g = self.req(c, "wait-op", "GET", f"{base}/operations/{op}?timeoutMs=5000", expect=(200,))
                if g.status == 200 and g.json()["state"] != "pending":
                    self.L.final_result(op, g.json()["result"]["code"])
        version = rng.choice([1, 2])
        self.req(c, "contentinfo", "GET", f"{base}/contentinfo?version={version}", expect=(200, 404, 400))
        if rng.random() < 0.5:
            r = self.req(c, "open-ci", "POST", f"{base}/contentinfo", {"offset": 0, "length": 0, "port": port}, expect=(201, 404))
            if r.status == 201:
                ci = r.json()["contentInfo"]
                for _ in range(rng.randrange(1, 4)):
                    r = self.req(c, "read-ci", "POST", f"{base}/contentinfo/{ci}/reads?maxBytes={rng.choice([16, 4096, 65536])}",
                                 headers={"Prefer": "wait=2"} if rng.random() < 0.5 else None, expect=(200, 202))
                    if r.status in (200, 202):
                        op = self.L.op(r, h, port)
                        if rng.random() < 0.3 and r.json()["state"] == "completed":
                            self.req(c, "buffer", "GET", f"{base}/operations/{op}/buffer", expect=(200,))
                self.req(c, "close-ci", "DELETE", f"{base}/contentinfo/{ci}", expect=(200,))
        self.req(c, "close-stream", "DELETE", f"{base}/streams/{s}", expect=(200, 404))
        self.req(c, "unpublish", "DELETE", base, expect=(200, 404))

    def cancel_race(self, c, rng, h, port, tag):
        cid = b64(f"soak-c-{tag}".encode())
        base = f"/instances/{h}/content/{cid}"
        s = self.open_stream(c, rng, h, cid, port)
        if not s:
            return
        r = self.req(c, "append", "POST", f"{base}/streams/{s}/data", rng.randbytes(rng.choice([10, 5000])), expect=(200, 202))
        if r.status in (200, 202):
            op = self.L.op(r, h, port)
            time.sleep(rng.random() * 0.15)  # around the faults' 100 ms, when they are on
            d = self.req(c, "cancel", "DELETE", f"{base}/operations/{op}", expect=(200, 404))
            outcome = "won" if d.status == 200 else str(d.status)
            if d.status == 200:
                doc = d.json()
                self.L.final_result(op, doc["operation"]["result"]["code"])
                outcome = "cancelled" if doc["operation"]["state"] == "canceled" else "result stood"
            with self.L.lock:
                self.L.cancel[outcome] = self.L.cancel.get(outcome, 0) + 1
            if rng.random() < 0.3:
                g = self.req(c, "get-op", "GET", f"{base}/operations/{op}?timeoutMs=1000", expect=(200,))
                if g.status == 200 and g.json()["state"] != "pending":
                    self.L.final_result(op, g.json()["result"]["code"])
        self.req(c, "close-stream", "DELETE", f"{base}/streams/{s}", expect=(200,))
        self.req(c, "unpublish", "DELETE", base, expect=(200, 404))

    def close_with_pending(self, c, rng, h, port, tag):
        cid = b64(f"soak-x-{tag}".encode())
        base = f"/instances/{h}/content/{cid}"
        s = self.open_stream(c, rng, h, cid, port)
        if not s:
            return
        ops = []
        for i in range(rng.randrange(1, 4)):
            r = self.req(c, "append", "POST", f"{base}/streams/{s}/data", rng.randbytes(1000), expect=(200, 202))
            if r.status in (200, 202):
                ops.append(self.L.op(r, h, port))
        self.req(c, "close-stream", "DELETE", f"{base}/streams/{s}", expect=(200,))
        for op in ops:  # readable after the close, for --retention
            g = self.req(c, "get-op", "GET", f"{base}/operations/{op}?timeoutMs=2000", expect=(200,))
            if g.status == 200 and g.json()["state"] != "pending":
                self.L.final_result(op, g.json()["result"]["code"])
        self.req(c, "unpublish", "DELETE", base, expect=(200, 404))

    # ---- the rest of the load
    def faults(self):
        c = self.conn()
        on = True
        while not self.stop.is_set():
            body = {"completionDelayMs": 100, "kinds": ["publishAddToStream"]} if on else {}
            self.req(c, "faults", "PUT", "/admin/faults", body, expect=(200,))
            on = not on
            self.stop.wait(20)
        self.req(c, "faults", "PUT", "/admin/faults", {}, expect=(200,))
        c.close()

    def long_poller(self):
        c = self.conn()
        h = self.req(c, "startup", "POST", "/instances", {}, expect=(201,)).json()["handle"]
        idle = self.req(c, "port", "POST", f"/instances/{h}/ports", expect=(201,)).json()["port"]
        rng = random.Random(self.a.seed)
        while not self.stop.is_set():
            try:
                if rng.random() < 0.5:
                    r = self.req(c, "dequeue-idle", "GET", f"/instances/{h}/ports/{idle}/completions?timeoutMs={rng.choice([0, 200, 1000])}", expect=(200,))
                    if r.status == 200 and (r.json()["completions"] or not r.json()["timedOut"]):
                        self.errors.append(f"idle port answered {r.body[:200]!r}")
                else:
                    r = self.req(c, "status-wait", "GET", f"/instances/{h}/status?since=available&timeoutMs={rng.choice([0, 300, 1000])}", expect=(200,))
            except (OSError, ConnectionError) as e:
                self.errors.append(f"long-poller: {e!r}")
                c.close()
        self.req(c, "shutdown", "DELETE", f"/instances/{h}", expect=(200,))
        c.close()

    def vanisher(self):
        rng = random.Random(self.a.seed + 7)
        c = self.conn()
        h = self.req(c, "startup", "POST", "/instances", {}, expect=(201,)).json()["handle"]
        idle = self.req(c, "port", "POST", f"/instances/{h}/ports", expect=(201,)).json()["port"]
        n = 0
        while not self.stop.is_set():
            n += 1
            cid = b64(f"soak-v-{n}".encode())
            s = self.open_stream(c, rng, h, cid, "default")
            base = f"/instances/{h}/content/{cid}"
            kind = rng.randrange(6)
            raw = {
                0: f"POST {base}/streams/{s}/data HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n".encode() + rng.randbytes(rng.choice([0, 10, 5000])),
                1: f"POST {base}/streams/{s}/data HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: appl".encode(),
                2: f"GET /instances/{h}/ports/{idle}/completions?timeoutMs=5000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode(),
                3: f"POST /instances/{h}/content/{b64(b'v' + str(n).encode())}/streams HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"contentLe".encode(),
                4: b"",
                5: b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            }[kind]
            try:
                v = socket.create_connection((self.server.host, self.server.port), timeout=5)
                if raw:
                    v.sendall(raw)
                time.sleep(rng.random() * 0.1)
                if rng.random() < 0.5:  # RST instead of FIN
                    v.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                v.close()
                with self.L.lock:
                    self.L.vanished += 1
                self.req(c, "close-stream", "DELETE", f"{base}/streams/{s}", expect=(200,))
                self.req(c, "unpublish", "DELETE", base, expect=(200, 404))
                self.dequeue(c, h, "default", 0, 1024)  # its aborted uploads: checked for duplicates
            except (OSError, ConnectionError) as e:
                self.errors.append(f"vanisher: {e!r}")
                c.close()
        self.req(c, "shutdown", "DELETE", f"/instances/{h}", expect=(200,))
        c.close()

    def bad_requester(self):
        rng = random.Random(self.a.seed + 11)
        c = self.conn()
        h = self.req(c, "startup", "POST", "/instances", {}, expect=(201,)).json()["handle"]
        bads = [
            ("GET", f"/instances/inst_AAAAAAAAAAAAAAAAAAAAAA", None, None),
            ("GET", f"/instances/{h}/ports/default/completions?max=0", None, None),
            ("GET", f"/instances/{h}/ports/default/completions?max=99999", None, None),
            ("GET", f"/instances/{h}/ports/default/completions?timeoutMs=-1", None, None),
            ("GET", f"/instances/{h}/operations?state=nope", None, None),
            ("GET", f"/instances/{h}/operations?pageSize=0", None, None),
            ("POST", f"/instances/{h}/content/YWJj/streams", b'{"contentLength":1e400}', "application/json"),
            ("POST", f"/instances/{h}/content/YWJj/streams", b'{"contentLength":18446744073709551616}', "application/json"),
            ("POST", f"/instances/{h}/content/YWJj/streams", b'{"version":"2"}', "application/json"),
            ("POST", f"/instances/{h}/content/YWJj/streams", b'{"version":2,}', "application/json"),
            ("POST", f"/instances/{h}/content/YWJj/streams", b'{"version":2}', "application/jsonx"),
            ("POST", f"/instances/{h}/content/!!/streams", b'{}', "application/json"),
            ("POST", f"/instances/{h}/content/YWJj/streams/strm_x/data?op=", b"x", None),
            ("DELETE", f"/instances/{h}/content/YWJj/operations/op_missing", None, None),
            ("DELETE", f"/instances/{h}/content/YWJj/operations/bad%00name", None, None),
            ("POST", "/instances", b'{"version":99}', "application/json"),
            ("POST", "/instances", b"[" * 1000 + b"]" * 1000, "application/json"),
            ("PUT", "/admin/faults", b'{"completionDelayMs":-1}', "application/json"),
            ("PUT", "/instances", None, None),
            ("GET", "/nope/" + "x" * 3000, None, None),
        ]
        while not self.stop.is_set():
            method, path, body, ctype = rng.choice(bads)
            try:
                r = self.req(c, "bad", method, path, body, None, ctype)
                if not 400 <= r.status < 500:
                    why = f"bad request {method} {path[:80]} {body[:60] if body else b''!r} ({ctype}) answered {r.status}"
                    if why not in self.errors:
                        self.errors.append(why)
                    if r.status == 201 and b"stream" in r.body:
                        self.req(c, "close-stream", "DELETE", f"{path}/{r.json()['stream']}")
            except (OSError, ConnectionError) as e:
                self.errors.append(f"bad requester: {e!r}")
                c.close()
            time.sleep(0.005)
        self.req(c, "shutdown", "DELETE", f"/instances/{h}", expect=(200,))
        c.close()

    def sampler(self):
        while not self.stop.is_set():
            try:
                self.rss.append((time.monotonic() - self.t0, self.server.rss_kib(), self.server.threads()))
            except (OSError, KeyError):
                self.errors.append("the server is gone")
                self.stop.set()
                return
            m = len(self.rss)
            if m % 6 == 1:
                t, kib, thr = self.rss[-1]
                with self.L.lock:
                    print(f"  {t / 60:5.1f} min  RSS {kib / 1024:7.1f} MiB  threads {thr:3d}  requests {self.L.requests}  "
                          f"ops {len(self.L.started)}  completions {len(self.L.seen)}  5xx {len(self.L.fivexx)}", flush=True)
            self.stop.wait(10)

    # ---- run and judge
    def run(self):
        seconds = self.a.minutes * 60
        threads = [threading.Thread(target=self.sampler, daemon=True), threading.Thread(target=self.faults, daemon=True)]
        threads += [threading.Thread(target=self.publisher, args=(i,), daemon=True) for i in range(self.a.workers)]
        threads += [threading.Thread(target=f, daemon=True) for f in (self.long_poller, self.vanisher, self.bad_requester)]
        for t in threads:
            t.start()
        self.stop.wait(seconds)
        end_rss = self.server.rss_kib() if self.server.alive() else None
        self.rss.append((time.monotonic() - self.t0, end_rss or 0, self.server.threads() if end_rss else 0))
        self.stop.set()
        for t in threads:
            t.join(90)
        alive = self.server.alive()
        # a last sweep of every publisher's ports was done by retire_instance; anything left is lost
        lost = self.L.outstanding()
        L = self.L
        window_start = 120 if seconds >= 300 else seconds * 0.2
        window = [kib for t, kib, _ in self.rss if t >= window_start and kib]
        rss_at_2 = next((kib for t, kib, _ in self.rss if t >= min(120, window_start)), None)
        flat = (max(window) - min(window)) / min(window) if window else 0.0
        mism = list(L.mismatch)
        for op, code in L.final.items():
            got = L.seen.get(op)
            if got and got[0] != code:
                mism.append((op, "completion", code, got[0]))
        ok = True
        print(f"\nrequests {L.requests}, operations started {len(L.started)}, completions dequeued "
              f"{sum(len(v) for v in L.seen.values())} ({len(L.seen)} operations), vanished clients {L.vanished}")
        print(f"cancels: {', '.join(f'{k} {v}' for k, v in sorted(L.cancel.items()))}")
        print(f"statuses: {', '.join(f'{k}: {v}' for k, v in sorted(L.status.items()))}")
        print(f"RSS at {min(120, window_start) / 60:.1f} min {rss_at_2 and rss_at_2 / 1024:.1f} MiB, at the end "
              f"{(end_rss or 0) / 1024:.1f} MiB; over the window from {window_start / 60:.1f} min: min {min(window) / 1024 if window else 0:.1f}, "
              f"max {max(window) / 1024 if window else 0:.1f} MiB ({flat * 100:.1f} %)")
        print(f"5xx answers (503 excluded): {len(L.fivexx)}")
        if self.a.verbose:
            for (route, st), v in sorted(L.by_route.items()):
                print(f"  {route:<13} {st} {v:>7}  {L.sample.get((route, st), b'').decode(errors='replace')}")
        if L.unexpected:
            print("unexpected statuses: " + ", ".join(f"{k[0]} {k[1]}: {v}" for k, v in sorted(L.unexpected.items())))
            for k in sorted(L.unexpected):
                print(f"  {k[0]} {k[1]}: {L.sample.get(k, b'').decode(errors='replace')}")
        checks = [
            (alive, "the server died"),
            (not L.fivexx, f"5xx answers: {L.fivexx[:5]}"),
            (flat <= 0.10, f"RSS not flat: {flat * 100:.1f} % over the window"),
            (not L.dupes, f"operations completed more than once: {L.dupes[:5]}"),
            (not mism, f"final results that differ: {mism[:5]}"),
            (not lost, f"{len(lost)} completions lost, e.g. {lost[:5]}"),
            (not L.not_pending_202, f"{len(L.not_pending_202)} answers 202 whose operation had ended, e.g. {L.not_pending_202[:3]}"),
            (not L.unexpected, "answers outside the contract: " + ", ".join(f"{k[0]} {k[1]} x{v}" for k, v in sorted(L.unexpected.items()))),
            (not self.errors, f"{len(self.errors)} client errors: " + "; ".join(self.errors[:12])),
        ]
        for good, why in checks:
            if not good:
                ok = False
                print("FAIL: " + why)
        print("PASS" if ok else "FAILED")
        return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--binary", default=DEFAULT_BINARY)
    ap.add_argument("-v", "--verbose", action="store_true", help="print every route's statuses")
    ap.add_argument("--retention", type=int, default=30, help="--retention of the server (seconds)")
    a = ap.parse_args()
    server = Server(a.binary, ["--log-level", "warning", "--retention", str(a.retention)])
    print(f"peerdistd pid {server.pid} on {server.host}:{server.port}; {a.minutes} min, {a.workers} publishers, seed {a.seed}", flush=True)
    try:
        ok = Soak(server, a).run()
    finally:
        server.stop()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
