#!/usr/bin/env python3
"""Cache isolation between principals under a flood (issue 18, "Must show"), against a release peerdistd.

  swift build -c release --product peerdistd
  python3 Benchmarks/isolation.py                       # --cache-size 256 MiB: a minute or two
  python3 Benchmarks/isolation.py --pause 0              # bob reads without a break
  python3 Benchmarks/isolation.py --cache-size 1073741824 --working-set 268435456

Two principals, alice and bob, from a tokens file (a fresh peerdistd on 127.0.0.1, port 0, a
temporary data directory, --cache-size as given, everything else default):

  bob      adds his working set (--working-set, default 64 MiB) through one retrieval, then reads
           it in a loop: block reads of 1 MiB with timeoutMs 0 (the local cache only) across the
           whole set, each followed by GET of its buffer, compared with his content. A read that
           answers fewer bytes than asked, or 4052, is a miss. The first pass is the warm-up.
           Between passes he waits --pause seconds (default 4: a client that comes back to its
           set every few seconds). Without a pause his reads alone keep his set the most recently
           used, and least recently used eviction keeps it too; with one, alice adds more than
           the rest of the cache meanwhile, and LRU alone would evict his set every time.
  alice    meanwhile floods the cache with --flood-factor (default 4) x --cache-size of random,
           self-consistent content: V1 content information made here (random blocks, their SHA-256
           hashes, HoD over them, a random Kp), in contents of 64 MiB, each through a retrieval of
           its own, AddData in 32 MiB bodies, one after another on one connection.

Bob keeps reading until alice's last AddData has ended, then reads one more whole pass. Printed:
alice's bytes and MiB/s, bob's passes, reads and hits after the warm-up (goal: 100 %), and what
/metrics says of the cache (bytes held, evictions). Before issue 18 the cache evicted the least
recently used entries whoever held them, so a flood four times its size took bob's set with it;
now the principal above its fair share (the cache divided among those holding entries) is
evicted first. Everything runs on 127.0.0.1 and stops by itself; the data directory is removed.
"""
import argparse, hashlib, hmac, os, struct, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from httpclient import DEFAULT_BINARY, Server, b64  # noqa: E402
from retrieval_bench import BLOCK, CI_PORTION, MiB, OCTETS, READ_MAX, WAIT, Conn, ended_ok  # noqa: E402

SEGMENT = 32 * MiB        # a V1 segment
FLOOD_CONTENT = 64 * MiB  # alice's contents: two segments each
PIECE = 32 * MiB          # AddData bodies
ALICE = ("alice", "alice-isolation-token-0123456789")
BOB = ("bob", "bob-isolation-token-0123456789ab")


class AuthConn(Conn):
    """A Conn whose every request carries a bearer token."""

    def __init__(self, server, token):
        super().__init__(server.host, server.port)
        self.auth = {"Authorization": f"Bearer {token}"}

    def send(self, method, path, body=b"", headers=None, ctype=None, length=None):
        super().send(method, path, body, dict(self.auth, **(headers or {})), ctype, length)


def content_information(data):
    """V1 content information (SHA-256) of DATA: one segment per 32 MiB, a random Kp each."""
    segments, lists = [], []
    for start in range(0, len(data), SEGMENT):
        seg = memoryview(data)[start:start + SEGMENT]
        hashes = [hashlib.sha256(seg[o:o + BLOCK]).digest() for o in range(0, len(seg), BLOCK)]
        hod = hashlib.sha256(b"".join(hashes)).digest()
        kp = hmac.new(os.urandom(32), hod, hashlib.sha256).digest()
        segments.append(struct.pack("<QII", start, len(seg), BLOCK) + hod + kp)
        lists.append(struct.pack("<I", len(hashes)) + b"".join(hashes))
    head = struct.pack("<HIIII", 0x0100, 0x800C, 0, 0, len(segments))
    return head + b"".join(segments) + b"".join(lists)


def open_retrieval(c, h, ci, tag):
    r = c.json("POST", f"/instances/{h}/retrievals", {"contentTag": tag})["retrieval"]
    for off in range(0, len(ci), CI_PORTION):
        ended_ok(c.json("POST", f"/instances/{h}/retrievals/{r}/contentinfo", ci[off:off + CI_PORTION], WAIT, OCTETS), "add ci")
    ended_ok(c.json("POST", f"/instances/{h}/retrievals/{r}/contentinfo/complete", headers=WAIT), "complete ci")
    return r


def add_data(c, h, r, data):
    for off in range(0, len(data), PIECE):
        chunk = memoryview(data)[off:off + PIECE]
        op = c.json("POST", f"/instances/{h}/retrievals/{r}/data?offset={off}", chunk, WAIT, OCTETS)
        if ended_ok(op, "AddData")["bytesTransferred"] != len(chunk):
            raise RuntimeError(f"AddData accepted {op['bytesTransferred']} of {len(chunk)}")


def read_pass(c, h, r, data):
    """One pass of 1 MiB block reads over DATA; returns (reads, hits)."""
    reads = hits = 0
    for off in range(0, len(data), READ_MAX):
        want = min(READ_MAX, len(data) - off)
        op = c.json("POST", f"/instances/{h}/retrievals/{r}/reads",
                    {"mode": "block", "offset": off, "maxBytes": want, "timeoutMs": 0}, WAIT)
        reads += 1
        code = op.get("result", {}).get("code")
        if code == 0 and op.get("bytesTransferred") == want:
            _, _, body = c.call("GET", f"/instances/{h}/retrievals/{r}/operations/{op['id']}/buffer")
            if bytes(body) != bytes(memoryview(data)[off:off + want]):
                raise RuntimeError(f"bob read other bytes at {off}")
            hits += 1
        elif code not in (0, 4052):
            raise RuntimeError(f"read at {off}: {op}")
    return reads, hits


def metric(c, name):
    _, _, body = c.call("GET", "/metrics")
    for line in bytes(body).decode().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=DEFAULT_BINARY)
    ap.add_argument("--cache-size", type=int, default=256 * MiB, help="the daemon's --cache-size (default 256 MiB)")
    ap.add_argument("--working-set", type=int, default=64 * MiB, help="bob's content (default 64 MiB)")
    ap.add_argument("--flood-factor", type=int, default=4, help="alice adds this many times --cache-size (default 4)")
    ap.add_argument("--pause", type=float, default=4.0, help="seconds bob waits between passes (default 4)")
    args = ap.parse_args()

    tokens_dir = tempfile.mkdtemp(prefix="peerdist-isolation-")
    tokens = os.path.join(tokens_dir, "tokens")
    with open(os.open(tokens, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
        f.write(f"{ALICE[0]} {ALICE[1]}\n{BOB[0]} {BOB[1]}\n")
    server = Server(binary=args.binary, args=["--cache-size", str(args.cache_size), "--tokens-file", tokens],
                    log_level="warning")
    try:
        run(server, args)
    finally:
        server.stop()
        os.remove(tokens)
        os.rmdir(tokens_dir)


def run(server, args):
    bob = AuthConn(server, BOB[1])
    hb = bob.json("POST", "/instances", {"version": 2})["handle"]
    working = os.urandom(args.working_set)
    rb = open_retrieval(bob, hb, content_information(working), "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0")
    add_data(bob, hb, rb, working)
    reads, hits = read_pass(bob, hb, rb, working)
    print(f"bob: working set {args.working_set / MiB:.0f} MiB added; warm-up pass {hits}/{reads} hits")

    flood_total = args.flood_factor * args.cache_size
    done, failure, flood_seconds = threading.Event(), [], [0.0]

    def flood():
        try:
            alice = AuthConn(server, ALICE[1])
            ha = alice.json("POST", "/instances", {"version": 2})["handle"]
            t0, added = time.perf_counter(), 0
            while added < flood_total:
                data = os.urandom(min(FLOOD_CONTENT, flood_total - added))
                # Alice's contents all share one tag (tags are usually fixed GUIDs), as bob's does.
                r = open_retrieval(alice, ha, content_information(data), "a11ce000a11ce000a11ce000a11ce000")
                add_data(alice, ha, r, data)
                alice.call("DELETE", f"/instances/{ha}/retrievals/{r}")
                added += len(data)
            flood_seconds[0] = time.perf_counter() - t0
        except Exception as e:  # reported by the main thread
            failure.append(e)
        finally:
            done.set()

    thread = threading.Thread(target=flood)
    thread.start()
    passes = total_reads = total_hits = 0
    while not done.wait(args.pause):
        r, h = read_pass(bob, hb, rb, working)
        passes, total_reads, total_hits = passes + 1, total_reads + r, total_hits + h
    thread.join()
    if failure:
        raise failure[0]
    r, h = read_pass(bob, hb, rb, working)
    passes, total_reads, total_hits = passes + 1, total_reads + r, total_hits + h

    print(f"alice: flooded {flood_total / MiB:.0f} MiB ({args.flood_factor} x --cache-size {args.cache_size / MiB:.0f} MiB) "
          f"in {flood_seconds[0]:.1f} s, {flood_total / MiB / max(flood_seconds[0], 1e-9):.0f} MiB/s")
    print(f"bob: {passes} passes after the warm-up, {args.pause:g} s apart (the last after the flood), {total_reads} reads, "
          f"{total_hits} hits: hit rate {100.0 * total_hits / max(total_reads, 1):.1f} %")
    cached = metric(bob, "peerdist_cache_bytes")
    evictions = metric(bob, "peerdist_cache_evictions_total")
    print(f"cache: {cached / MiB if cached is not None else float('nan'):.1f} MiB held, "
          f"{evictions if evictions is not None else float('nan'):.0f} evictions")
    if total_hits != total_reads:
        sys.exit(1)


if __name__ == "__main__":
    main()
