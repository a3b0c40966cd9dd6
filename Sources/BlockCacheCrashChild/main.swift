import BlockCache
import Foundation

// Usage: BlockCacheCrashChild DIR BATCH_BLOCKS
// Inserts batches of BATCH_BLOCKS distinct 64 KiB V1 blocks (SHA-256) into a cache in DIR, one
// transaction per batch, forever, and prints "committed N" after batch N commits. It starts
// after the whole batches already there. Block i of batch b has bytes derived from (b, i), so a
// reader can recompute what every key must hold.
let arguments = CommandLine.arguments
guard arguments.count == 3, let batchSize = Int(arguments[2]), batchSize > 0 else {
    FileHandle.standardError.write(Data("usage: BlockCacheCrashChild DIR BATCH_BLOCKS\n".utf8))
    exit(2)
}
let cache = try await BlockCache.open(BlockCacheConfiguration(directory: arguments[1], capacityBytes: 1 << 40))
var batch = UInt32(cache.statistics().entries / Int64(batchSize))
while true {
    let items = (0..<batchSize).map { i in CrashChildData.insertion(batch: batch, index: UInt32(i)) }
    let outcomes = await cache.insert(items)
    guard outcomes.allSatisfy({ $0 == .stored }) else {
        FileHandle.standardError.write(Data("insert failed: \(outcomes)\n".utf8))
        exit(1)
    }
    FileHandle.standardOutput.write(Data("committed \(batch)\n".utf8))
    batch += 1
}
