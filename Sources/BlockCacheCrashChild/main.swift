import BlockCache
import Foundation

// Usage: BlockCacheCrashChild DIR BATCH_BLOCKS [CAPACITY_BYTES FIRST_BATCH]
// Inserts batches of BATCH_BLOCKS distinct 64 KiB V1 blocks (SHA-256) into a cache in DIR, one
// transaction per batch, forever, and prints "committed N" after batch N commits. It starts
// after the whole batches already there, or at FIRST_BATCH in a cache bounded at CAPACITY_BYTES
// (where every batch evicts, so that block files are recycled). Block i of batch b has bytes
// derived from (b, i), so a reader can recompute what every key must hold.
let arguments = CommandLine.arguments
guard arguments.count == 3 || arguments.count == 5, let batchSize = Int(arguments[2]), batchSize > 0,
    let capacity = arguments.count == 5 ? Int64(arguments[3]) : 1 << 40
else {
    FileHandle.standardError.write(Data("usage: BlockCacheCrashChild DIR BATCH_BLOCKS [CAPACITY_BYTES FIRST_BATCH]\n".utf8))
    exit(2)
}
let cache = try await BlockCache.open(BlockCacheConfiguration(directory: arguments[1], capacityBytes: capacity))
var batch = arguments.count == 5 ? UInt32(arguments[4]) ?? 0 : UInt32(cache.statistics().entries / Int64(batchSize))
while true {
    let items = (0..<batchSize).map { i in CrashChildData.insertion(batch: batch, index: UInt32(i)) }
    let outcomes = await cache.insert(items, by: "crash-child")
    guard outcomes.allSatisfy({ $0 == .stored }) else {
        FileHandle.standardError.write(Data("insert failed: \(outcomes)\n".utf8))
        exit(1)
    }
    FileHandle.standardOutput.write(Data("committed \(batch)\n".utf8))
    batch += 1
}
