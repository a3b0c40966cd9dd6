import BlockCache
import Crypto
import Foundation
import PCCRC

// Usage: BlockCacheBench DIR [MiB] [RSS_MiB]
// Inserts MiB (default 1024) of distinct 64 KiB V1 blocks into a fresh cache in DIR, verified and
// stored, then reads them all back verified; then inserts RSS_MiB (default 2048) into a cache
// bounded at half of that (so eviction runs) while sampling VmRSS. Prints one line per figure.

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    FileHandle.standardError.write(Data("usage: BlockCacheBench DIR [MiB] [RSS_MiB]\n".utf8))
    exit(2)
}
let root = arguments[1]
let mebibytes = arguments.count > 2 ? Int(arguments[2]) ?? 1024 : 1024
let rssMebibytes = arguments.count > 3 ? Int(arguments[3]) ?? 2048 : 2048
let blockLength = Blocks.length

func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        let kib = line.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return kib * 1024
    }
    return 0
}

func seconds(_ body: () async -> Void) async -> Double {
    let start = ContinuousClock.now
    await body()
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
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

func report(_ name: String, bytes: Int, seconds: Double) {
    let mib = Double(bytes) / 1_048_576
    let padded = name.padding(toLength: 46, withPad: " ", startingAt: 0)
    print(padded + String(format: " %8.1f MiB/s  (%.0f MiB in %.2f s)", mib / seconds, mib, seconds))
}

// Set-up, outside every timing: the block pool and every digest.
let count = mebibytes * 1_048_576 / blockLength
let digests = Blocks.digests(max(count, rssMebibytes * 1_048_576 / blockLength))

// The hash alone, in this process (what verification costs at best).
let hashBlocks = 4096
let hashTime = await seconds {
    var sink: UInt8 = 0
    for i in 0..<hashBlocks { sink ^= SHA256.hash(data: Blocks.pool[i % Blocks.pool.count]).withUnsafeBytes { $0[0] } }
    if sink == 42 { print("") }
}
report("swift-crypto SHA-256, one core", bytes: hashBlocks * blockLength, seconds: hashTime)

for (label, batch, width) in [("insert, 1 block a call, 1 caller", 1, 1), ("insert, 16 blocks a call, 2 callers", 16, 2)] {
    let dir = root + "/throughput-\(batch)"
    try? FileManager.default.removeItem(atPath: dir)
    let cache = try await BlockCache.open(BlockCacheConfiguration(directory: dir, capacityBytes: Int64(count + 1) * Int64(blockLength)))
    let calls = count / batch
    let time = await seconds {
        await inFlight(calls, width: width) { call in
            let items = (0..<batch).map { Blocks.block(call * batch + $0, digests[call * batch + $0]) }
            let outcomes = await cache.insert(items)
            precondition(outcomes.allSatisfy { $0 == .stored }, "insert failed: \(outcomes)")
        }
    }
    report(label, bytes: count * blockLength, seconds: time)
    if batch == 16 {
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
        let stats = cache.statistics()
        print("  hits \(stats.hits) misses \(stats.misses) corrupt \(stats.corruptOnRead)")
    }
    await cache.close()
    try? FileManager.default.removeItem(atPath: dir)
}

// Resident memory during a large insert, bounded at half of it so that eviction runs.
do {
    let dir = root + "/rss"
    try? FileManager.default.removeItem(atPath: dir)
    let total = rssMebibytes * 1_048_576 / blockLength
    let cache = try await BlockCache.open(BlockCacheConfiguration(directory: dir, capacityBytes: Int64(total / 2) * Int64(blockLength)))
    let before = residentBytes()
    var peak = before
    let batch = 16
    let time = await seconds {
        for call in 0..<(total / batch) {
            let items = (0..<batch).map { Blocks.block(call * batch + $0, digests[call * batch + $0]) }
            _ = await cache.insert(items)
            if call % 16 == 0 { peak = max(peak, residentBytes()) }
        }
    }
    peak = max(peak, residentBytes())
    let stats = cache.statistics()
    report("insert at the bound (evicting), 16 a call", bytes: total * blockLength, seconds: time)
    print(String(format: "RSS during a %d MiB insert: before %.1f MiB, peak %.1f MiB, growth %.1f MiB; evictions %lld, entries %lld",
        rssMebibytes, Double(before) / 1_048_576, Double(peak) / 1_048_576, Double(peak - before) / 1_048_576, stats.evictions, stats.entries))
    await cache.close()
    try? FileManager.default.removeItem(atPath: dir)
}
