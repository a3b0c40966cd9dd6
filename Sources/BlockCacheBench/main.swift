import BlockCache
import Crypto
import Foundation
import PCCRC

// Usage: BlockCacheBench DIR [MiB] [RSS_MiB]
// First the file system's own rate for as many 64 KiB files (open, write, close, rename), as new
// files and as rewrites of existing ones (the file-per-entry layout the packs replaced). Then
// inserts MiB (default 1024) of distinct 64 KiB V1 blocks into a fresh cache in DIR, verified and
// stored, reads them all back verified, and inserts MiB more into the same cache bounded at MiB,
// so that every insert evicts one block (the steady state of a cache in service). Then inserts
// RSS_MiB (default 2048) into a cache bounded at half of that while sampling VmRSS. Prints one
// line per figure. Nothing is deleted before the process ends (the caller removes DIR): on ext4
// without a journal, creating files just after deleting many is several times slower (see
// PackFileStore), which would measure the bench's housekeeping instead of the cache.
let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    FileHandle.standardError.write(Data("usage: BlockCacheBench DIR [MiB] [RSS_MiB]\n".utf8))
    exit(2)
}
let root = arguments[1]
let mebibytes = arguments.count > 2 ? Int(arguments[2]) ?? 1024 : 1024
let rssMebibytes = arguments.count > 3 ? Int(arguments[3]) ?? 2048 : 2048
// BLOCKCACHE_BENCH_PHASES=raw,fresh,full,rss (the default: all) runs only some, for profiling.
let phases = Set((ProcessInfo.processInfo.environment["BLOCKCACHE_BENCH_PHASES"] ?? "raw,fresh,full,rss").split(separator: ",").map(String.init))
let blockLength = Blocks.length

func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        let kib = line.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return kib * 1024
    }
    return 0
}

/// Wall-clock and CPU time (user + system, every thread of the process) of one phase.
struct Timing {
    var wall: Double
    var cpu: Double
}

func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func value(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
    return value(usage.ru_utime) + value(usage.ru_stime)
}

func seconds(_ body: () async -> Void) async -> Timing {
    let start = ContinuousClock.now
    let cpuStart = cpuSeconds()
    await body()
    let elapsed = ContinuousClock.now - start
    return Timing(wall: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18, cpu: cpuSeconds() - cpuStart)
}

/// Runs `count` jobs with `width` of them in flight.
func inFlight(_ count: Int, width: Int, _ job: @escaping @Sendable (Int) async -> Void) async {
    await withTaskGroup(of: Void.self) { group in
        var next = 0
        while next < min(width, count) {
            let i = next
            group.addTask { await job(i) }
            next += 1
        }
        while await group.next() != nil {
            if next < count {
                let i = next
                group.addTask { await job(i) }
                next += 1
            }
        }
    }
}

/// One line on stdout, unbuffered (a profiler can be attached when a phase begins).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// MiB/s, and the CPU time it took per GiB (the machine is shared: the CPU cost is the steadier figure).
func report(_ name: String, bytes: Int, seconds timing: Timing) {
    let mib = Double(bytes) / 1_048_576
    let padded = name.padding(toLength: 52, withPad: " ", startingAt: 0)
    say(padded + String(format: " %8.1f MiB/s  (%.0f MiB in %.2f s; CPU %.2f s per GiB)", mib / timing.wall, mib, timing.wall, timing.cpu * 1024 / mib))
}

// Set-up, outside every timing: the block pool and every digest.
let count = mebibytes * 1_048_576 / blockLength
let digests = Blocks.digests(max(2 * count, rssMebibytes * 1_048_576 / blockLength))

// The hash alone, in this process (what verification costs at best).
let hashBlocks = 4096
let hashTime = await seconds {
    var sink: UInt8 = 0
    for i in 0..<hashBlocks { sink ^= SHA256.hash(data: Blocks.pool[i % Blocks.pool.count]).withUnsafeBytes { $0[0] } }
    if sink == 42 { say("") }
}
report("swift-crypto SHA-256, one core", bytes: hashBlocks * blockLength, seconds: hashTime)

// The file system alone: the same number of 64 KiB files, new, then overwritten in place.
if phases.contains("raw") {
    let dir = root + "/raw"
    try? FileManager.default.createDirectory(atPath: dir + "/tmp", withIntermediateDirectories: true)
    for shard in 0..<256 { try? FileManager.default.createDirectory(atPath: dir + "/\(shard)", withIntermediateDirectories: true) }
    let block = Blocks.pool[0]
    func writeFile(_ path: String, flags: Int32) {
        let fd = open(path, flags, 0o600)
        precondition(fd >= 0, "open \(path)")
        let n = block.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        precondition(n == block.count, "write")
        close(fd)
    }
    let create = await seconds {
        for i in 0..<count {
            let temporary = dir + "/tmp/\(i)"
            writeFile(temporary, flags: O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC)
            precondition(rename(temporary, dir + "/\(i % 256)/\(i)") == 0, "rename")
        }
    }
    report("file system: new 64 KiB files (open,write,rename)", bytes: count * blockLength, seconds: create)
    let overwrite = await seconds {
        for i in 0..<count {
            let temporary = dir + "/tmp/\(i)"
            precondition(rename(dir + "/\(i % 256)/\(i)", temporary) == 0, "rename")
            writeFile(temporary, flags: O_WRONLY | O_CLOEXEC)
            precondition(rename(temporary, dir + "/\((i + 1) % 256)/\(i)") == 0, "rename")
        }
    }
    report("file system: same, reusing existing files", bytes: count * blockLength, seconds: overwrite)
}

func insertAll(_ cache: BlockCache, from first: Int, count: Int, batch: Int, width: Int) async -> Timing {
    await seconds {
        await inFlight(count / batch, width: width) { call in
            let items = (0..<batch).map { first + call * batch + $0 }.map { Blocks.block($0, digests[$0]) }
            let outcomes = await cache.insert(items, by: "bench")
            precondition(outcomes.allSatisfy { $0 == .stored }, "insert failed: \(outcomes)")
        }
    }
}

for (label, batch, width) in [("insert, 1 block a call, 1 caller", 1, 1), ("insert, 16 blocks a call, 2 callers", 16, 2)]
where phases.contains("fresh") || (batch == 16 && phases.contains("full")) {
    let dir = root + "/throughput-\(batch)"
    let cache = try await BlockCache.open(BlockCacheConfiguration(directory: dir, capacityBytes: Int64(count + 1) * Int64(blockLength)))
    let time = await insertAll(cache, from: 0, count: count, batch: batch, width: width)
    if phases.contains("fresh") { report(label + ", fresh cache", bytes: count * blockLength, seconds: time) }
    await cache.close()
}
if phases.contains("full") {
    let dir = root + "/throughput-16"
    let cache = try await BlockCache.open(BlockCacheConfiguration(directory: dir, capacityBytes: Int64(count) * Int64(blockLength)))
    let keys = (0..<count).map { (Blocks.key($0), digests[$0]) }
    for (readLabel, width) in [("read verified, 1 caller", 1), ("read verified, 4 callers", 4)] {
        let readTime = await seconds {
            await inFlight(count, width: width) { i in
                let bytes = await cache.read(keys[i].0, digest: keys[i].1)
                precondition(bytes?.count == blockLength, "miss at \(i)")
            }
        }
        report(readLabel, bytes: count * blockLength, seconds: readTime)
    }
    var stats = cache.statistics()
    say("  hits \(stats.hits) misses \(stats.misses) corrupt \(stats.corruptOnRead)")
    let ways = [("insert, 1 block a call, 1 caller", 1, 1), ("insert, 16 blocks a call, 1 caller", 16, 1), ("insert, 16 blocks a call, 2 callers", 16, 2)]
    // Blocks count ..< 2 count, a third for each way of calling, none cached before.
    let third = count / 48 * 16
    for (way, (label, batch, width)) in ways.enumerated() {
        // The cache is full: each block stored evicts the least recently used one.
        let time = await insertAll(cache, from: count + way * third, count: third, batch: batch, width: width)
        report(label + ", full cache", bytes: third * blockLength, seconds: time)
    }
    stats = cache.statistics()
    say("  evictions \(stats.evictions) entries \(stats.entries)")
    await cache.close()
}

// Resident memory during a large insert, bounded at half of it so that eviction runs.
if phases.contains("rss") {
    let dir = root + "/rss"
    let total = rssMebibytes * 1_048_576 / blockLength
    let cache = try await BlockCache.open(BlockCacheConfiguration(directory: dir, capacityBytes: Int64(total / 2) * Int64(blockLength)))
    let before = residentBytes()
    var peak = before
    let batch = 16
    let time = await seconds {
        for call in 0..<(total / batch) {
            let items = (0..<batch).map { Blocks.block(call * batch + $0, digests[call * batch + $0]) }
            _ = await cache.insert(items, by: "bench")
            if call % 16 == 0 { peak = max(peak, residentBytes()) }
        }
    }
    peak = max(peak, residentBytes())
    let stats = cache.statistics()
    report("insert at the bound (evicting), 16 a call", bytes: total * blockLength, seconds: time)
    say(String(format: "RSS during a %d MiB insert: before %.1f MiB, peak %.1f MiB, growth %.1f MiB; evictions %lld, entries %lld",
        rssMebibytes, Double(before) / 1_048_576, Double(peak) / 1_048_576, Double(peak - before) / 1_048_576, stats.evictions, stats.entries))
    await cache.close()
}
