#!/usr/bin/env python3
"""Compares the two SQLite layouts the block cache could use, on the same libsqlite3 and disk.

  blobs   one database in WAL mode, synchronous=NORMAL: block bytes in a `blobs` table, metadata
          (key, digest, size, recency) in an `entries` table; one transaction per insert.
  files   the same `entries` index, but each block in a content-addressed file written to a
          temporary name and renamed into place before its index row commits.
  packs   the same index with each entry's pack and offset: blocks appended to 64 MiB pack files
          before their rows commit, read with pread, deleted by punching a hole (what the cache
          does since the file-per-block layout; see PackFileStore).

Both are safe against kill -9 without fsync (the page cache outlives the process); neither
fsyncs per block. Prints MiB/s for insert, read by key and delete, medians of --rounds.
Usage: python3 Benchmarks/cache_layout.py [--blocks 4096] [--rounds 3] [--dir DIR]
"""
import argparse, ctypes, hashlib, os, shutil, sqlite3, statistics, tempfile, time

LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
PUNCH_HOLE_KEEP_SIZE = 0x02 | 0x01  # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
PACK_BYTES = 64 << 20

SCHEMA = """
CREATE TABLE entries(id INTEGER PRIMARY KEY, segment BLOB NOT NULL, block INTEGER NOT NULL,
  digest BLOB NOT NULL, size INTEGER NOT NULL, used INTEGER NOT NULL, UNIQUE(segment, block));
CREATE TABLE blobs(id INTEGER PRIMARY KEY, data BLOB NOT NULL);
"""

def open_db(path):
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(SCHEMA)
    return db

def run_blobs(root, blocks, data):
    db = open_db(os.path.join(root, "cache.sqlite"))
    t0 = time.perf_counter()
    for i, (seg, block) in enumerate(data):
        db.execute("BEGIN IMMEDIATE")
        cur = db.execute("INSERT INTO entries(segment, block, digest, size, used) VALUES (?,?,?,?,?)",
                         (seg, i, hashlib.sha256(block).digest(), len(block), i))
        db.execute("INSERT INTO blobs(id, data) VALUES (?,?)", (cur.lastrowid, block))
        db.execute("COMMIT")
    t1 = time.perf_counter()
    for i, (seg, _) in enumerate(data):
        (eid,) = db.execute("SELECT id FROM entries WHERE segment=? AND block=?", (seg, i)).fetchone()
        (b,) = db.execute("SELECT data FROM blobs WHERE id=?", (eid,)).fetchone()
        assert len(b) == len(data[i][1])
    t2 = time.perf_counter()
    for i, (seg, _) in enumerate(data):
        db.execute("BEGIN IMMEDIATE")
        (eid,) = db.execute("SELECT id FROM entries WHERE segment=? AND block=?", (seg, i)).fetchone()
        db.execute("DELETE FROM blobs WHERE id=?", (eid,))
        db.execute("DELETE FROM entries WHERE id=?", (eid,))
        db.execute("COMMIT")
    t3 = time.perf_counter()
    db.close()
    return t1 - t0, t2 - t1, t3 - t2

def run_files(root, blocks, data):
    db = open_db(os.path.join(root, "index.sqlite"))
    store = os.path.join(root, "blocks")
    for a in range(256):
        os.makedirs(os.path.join(store, "%02x" % a))
    def path_of(seg, i):
        name = hashlib.sha256(seg + i.to_bytes(4, "little")).hexdigest()
        return os.path.join(store, name[:2], name)
    t0 = time.perf_counter()
    for i, (seg, block) in enumerate(data):
        final = path_of(seg, i)
        tmp = final + ".tmp"
        with open(tmp, "wb") as f:
            f.write(block)
        os.rename(tmp, final)
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO entries(segment, block, digest, size, used) VALUES (?,?,?,?,?)",
                   (seg, i, hashlib.sha256(block).digest(), len(block), i))
        db.execute("COMMIT")
    t1 = time.perf_counter()
    for i, (seg, _) in enumerate(data):
        row = db.execute("SELECT id FROM entries WHERE segment=? AND block=?", (seg, i)).fetchone()
        with open(path_of(seg, i), "rb") as f:
            b = f.read()
        assert row and len(b) == len(data[i][1])
    t2 = time.perf_counter()
    for i, (seg, _) in enumerate(data):
        db.execute("BEGIN IMMEDIATE")
        db.execute("DELETE FROM entries WHERE segment=? AND block=?", (seg, i))
        db.execute("COMMIT")
        os.unlink(path_of(seg, i))
    t3 = time.perf_counter()
    db.close()
    return t1 - t0, t2 - t1, t3 - t2

def run_packs(root, blocks, data):
    db = open_db(os.path.join(root, "index.sqlite"))
    db.execute("ALTER TABLE entries ADD COLUMN pack INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE entries ADD COLUMN offset INTEGER NOT NULL DEFAULT 0")
    fds = []
    end = PACK_BYTES
    t0 = time.perf_counter()
    for i, (seg, block) in enumerate(data):
        if end >= PACK_BYTES:
            fds.append(os.open(os.path.join(root, str(len(fds))), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600))
            end = 0
        os.pwrite(fds[-1], block, end)
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO entries(segment, block, digest, size, used, pack, offset) VALUES (?,?,?,?,?,?,?)",
                   (seg, i, hashlib.sha256(block).digest(), len(block), i, len(fds) - 1, end))
        db.execute("COMMIT")
        end += (len(block) + 4095) // 4096 * 4096
    t1 = time.perf_counter()
    for i, (seg, _) in enumerate(data):
        pack, offset, size = db.execute("SELECT pack, offset, size FROM entries WHERE segment=? AND block=?", (seg, i)).fetchone()
        b = os.pread(fds[pack], size, offset)
        assert len(b) == len(data[i][1])
    t2 = time.perf_counter()
    for i, (seg, _) in enumerate(data):
        db.execute("BEGIN IMMEDIATE")
        pack, offset, size = db.execute("SELECT pack, offset, size FROM entries WHERE segment=? AND block=?", (seg, i)).fetchone()
        db.execute("DELETE FROM entries WHERE segment=? AND block=?", (seg, i))
        db.execute("COMMIT")
        if LIBC.fallocate(fds[pack], PUNCH_HOLE_KEEP_SIZE, offset, (size + 4095) // 4096 * 4096) != 0:
            raise OSError(ctypes.get_errno(), "fallocate")
    t3 = time.perf_counter()
    for fd in fds:
        os.close(fd)
    db.close()
    return t1 - t0, t2 - t1, t3 - t2

def main():
    p = argparse.ArgumentParser()
    p.add_argument("--blocks", type=int, default=4096)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--dir", default=None)
    a = p.parse_args()
    block_size = 65536
    data = [(os.urandom(32), os.urandom(block_size)) for _ in range(a.blocks)]
    mib = a.blocks * block_size / 2**20
    results = {"blobs": [], "files": [], "packs": []}
    for _ in range(a.rounds):
        for name, fn in (("blobs", run_blobs), ("files", run_files), ("packs", run_packs)):  # interleaved rounds
            root = tempfile.mkdtemp(prefix="cache-layout-", dir=a.dir)
            try:
                results[name].append(fn(root, a.blocks, data))
            finally:
                shutil.rmtree(root)
    print(f"sqlite {sqlite3.sqlite_version}, {a.blocks} blocks of {block_size} B ({mib:.0f} MiB), "
          f"median of {a.rounds} interleaved rounds (hashing included in insert)")
    for name, rows in results.items():
        ins, rd, de = (statistics.median(r[k] for r in rows) for k in range(3))
        print(f"{name:6s} insert {mib/ins:7.1f} MiB/s   read {mib/rd:7.1f} MiB/s   delete {a.blocks/de:8.0f} blocks/s")

if __name__ == "__main__":
    main()
