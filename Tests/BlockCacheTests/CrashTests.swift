import BlockCache
import Foundation
import Testing

/// kill -9 in the middle of inserting, then reopen: only whole, verified entries are readable.
@Suite(.serialized) struct CrashTests {
    /// The child binary, next to the test bundle in the build folder.
    static var child: URL {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("BlockCacheCrashChild")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("BlockCacheCrashChild")
    }

    /// Runs a blocking call on a thread of its own, off the cooperative pool.
    static func offPool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: body()) }.start()
        }
    }

    /// Starts the child, waits until it reported `commits` committed batches (read from its
    /// stdout, no sleeping), kills it with SIGKILL and returns the last batch number it reported.
    func insertAndKill(dir: String, batchBlocks: Int, commits: Int, bounded: (capacity: Int64, firstBatch: Int)? = nil) async throws -> Int {
        let process = Process()
        process.executableURL = Self.child
        process.arguments = [dir, String(batchBlocks)] + (bounded.map { [String($0.capacity), String($0.firstBatch)] } ?? [])
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        var env = ProcessInfo.processInfo.environment
        env["SWIFT_BACKTRACE"] = "enable=no"
        process.environment = env
        try process.run()
        let pid = process.processIdentifier
        let last = await Self.offPool { () -> Int in
            var last = -1
            var seen = 0
            var line: [UInt8] = []
            let handle = out.fileHandleForReading
            while seen < commits {
                let byte = handle.readData(ofLength: 1)
                if byte.isEmpty { break }
                if byte[0] == 10 {
                    let text = String(decoding: line, as: UTF8.self)
                    if text.hasPrefix("committed "), let n = Int(text.dropFirst(10)) {
                        last = n
                        seen += 1
                    }
                    line = []
                } else {
                    line.append(byte[0])
                }
            }
            // Mid-transaction: the child starts its next batch as soon as it prints.
            kill(pid, SIGKILL)
            process.waitUntilExit()
            return last
        }
        #expect(process.terminationReason == .uncaughtSignal)
        #expect(process.terminationStatus == SIGKILL)
        return last
    }

    @Test func killDuringLargeInsertLeavesAConsistentCache() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let batchBlocks = 256  // 16 MiB per transaction
        var everCommitted = -1
        for _ in 1...2 {
            // Each run goes on after the whole batches already there.
            let last = try await insertAndKill(dir: dir.path, batchBlocks: batchBlocks, commits: 2)
            #expect(last > everCommitted)
            everCommitted = last

            let cache = try await BlockCache.open(BlockCacheConfiguration(directory: dir.path, capacityBytes: 1 << 40))
            let stats = cache.statistics()
            // Whole batches only: the batch that was being written when killed is all or nothing.
            #expect(stats.entries % Int64(batchBlocks) == 0)
            #expect(stats.entries >= Int64((everCommitted + 1) * batchBlocks))
            #expect(stats.bytes == stats.entries * 65_536)
            let batches = Int(stats.entries) / batchBlocks
            var bad = 0
            for batch in 0..<batches {
                for index in 0..<batchBlocks {
                    let expected = Fixture.childInsertion(batch: UInt32(batch), index: UInt32(index))
                    if await cache.read(expected.key, digest: expected.digest) != expected.bytes { bad += 1 }
                }
            }
            #expect(bad == 0)
            // The batch after the last whole one has nothing readable.
            let next = Fixture.childInsertion(batch: UInt32(batches), index: 0)
            #expect(!(await cache.contains(next.key)))
            #expect(cache.statistics().corruptOnRead == 0)
            // Nothing half-written is left on disk: the packs hold exactly the entries' bytes.
            #expect(Int64(Fixture.allocatedBytes(dir.path)) == stats.bytes)
            await cache.close()
        }
    }

    /// The same in a full cache, where each batch evicts (holes punched in the packs): after the
    /// kill, the newest whole batches are readable, every byte read verifies, and no byte is left
    /// on disk outside the index.
    @Test func killWhileEvictingAndRecyclingLeavesAConsistentCache() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let batchBlocks = 16
        let heldBatches = 4
        let capacity = Int64(heldBatches * batchBlocks * 65_536)
        for run in 1...2 {
            // Fresh batch numbers each run, so that every block is new and evicts one.
            let first = run * 100_000
            let last = try await insertAndKill(dir: dir.path, batchBlocks: batchBlocks, commits: 12, bounded: (capacity, first))
            #expect(last >= first + 11)
            let cache = try await BlockCache.open(BlockCacheConfiguration(directory: dir.path, capacityBytes: capacity))
            let stats = cache.statistics()
            #expect(stats.entries == Int64(heldBatches * batchBlocks))
            #expect(stats.bytes == capacity)
            var readable = 0
            var wrong = 0
            // The batch being written when killed either committed whole or left nothing.
            for batch in (last - heldBatches + 1)...(last + 1) {
                for index in 0..<batchBlocks {
                    let expected = Fixture.childInsertion(batch: UInt32(batch), index: UInt32(index))
                    guard let bytes = await cache.read(expected.key, digest: expected.digest) else { continue }
                    readable += 1
                    if bytes != expected.bytes { wrong += 1 }
                }
            }
            #expect(wrong == 0)
            #expect(readable == heldBatches * batchBlocks)
            for batch in (last - heldBatches + 2)...last {
                let expected = Fixture.childInsertion(batch: UInt32(batch), index: UInt32(batchBlocks - 1))
                #expect(await cache.contains(expected.key))
            }
            #expect(cache.statistics().corruptOnRead == 0)
            #expect(Int64(Fixture.allocatedBytes(dir.path)) == stats.bytes)
            await cache.close()
        }
    }

    @Test func leftoversOfAnInterruptedWriteAreRemovedAtOpen() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let data = Fixture.bytes(65_536, seed: 60)
        let key = BlockKey(segment: Fixture.segment(14), index: 0)
        do {
            let cache = try await BlockCache.open(BlockCacheConfiguration(directory: dir.path, capacityBytes: 1 << 30))
            #expect(await cache.insert(key, digest: Fixture.sha256(data), bytes: data, tag: nil, by: "p") == .stored)
            await cache.close()
        }
        // What a crash between the steps of an insert leaves: bytes appended to a pack whose rows
        // never committed (after the entry), and a pack with no row.
        let orphan = Fixture.bytes(65_536, seed: 61)
        let packs = Fixture.packFiles(dir.path)
        #expect(packs.count == 1)
        let handle = try #require(FileHandle(forUpdatingAtPath: packs[0]))
        try handle.seek(toOffset: 65_536)
        try handle.write(contentsOf: Data(orphan))
        try handle.close()
        #expect(FileManager.default.createFile(atPath: packs[0] + "9", contents: Data(orphan)))
        #expect(Fixture.allocatedBytes(dir.path) == 3 * 65_536)
        let cache = try await BlockCache.open(BlockCacheConfiguration(directory: dir.path, capacityBytes: 1 << 30))
        #expect(Fixture.packFiles(dir.path) == packs)
        #expect(Fixture.allocatedBytes(dir.path) == 65_536)
        #expect(cache.statistics().entries == 1)
        #expect(await cache.read(key, digest: Fixture.sha256(data)) == data)
        // The orphan's key was never committed, so inserting it stores it normally.
        let orphanKey = BlockKey(segment: Fixture.segment(15), index: 0)
        #expect(await cache.read(orphanKey, digest: Fixture.sha256(orphan)) == nil)
        #expect(await cache.insert(orphanKey, digest: Fixture.sha256(orphan), bytes: orphan, tag: nil, by: "p") == .stored)
        #expect(await cache.read(orphanKey, digest: Fixture.sha256(orphan)) == orphan)
        await cache.close()
    }
}
