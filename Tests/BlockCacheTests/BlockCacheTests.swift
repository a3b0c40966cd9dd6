import BlockCache
import CSQLite
import Crypto
import Foundation
import PCCRC
import Testing

@Suite struct BlockCacheTests {
    static let block = 65_536

    func open(_ dir: TemporaryDirectory, capacity: Int64 = 1 << 30, staging: Int64 = 64 << 20) async throws -> BlockCache {
        try await BlockCache.open(BlockCacheConfiguration(directory: dir.path, capacityBytes: capacity, stagingCapacityBytes: staging))
    }

    @Test func verifiedInsertReadsBack() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let cache = try await open(dir)
        let data = Fixture.bytes(Self.block, seed: 1)
        let key = BlockKey(segment: Fixture.segment(1), index: 3)
        #expect(await cache.insert(key, digest: Fixture.sha256(data), bytes: data, tag: nil, by: "p") == .stored)
        #expect(await cache.read(key, digest: Fixture.sha256(data)) == data)
        #expect(await cache.contains(key))
        #expect(await cache.sizes(of: [key, BlockKey(segment: Fixture.segment(1), index: 4)]) == [Self.block, nil])
        // The other V1 functions, with 48- and 64-byte segment IDs, and a short last block.
        let short = Array(data.prefix(1000))
        let d384 = BlockDigest(.v1(.sha384), SHA384.hash(data: short).withUnsafeBytes { Array($0) })!
        let d512 = BlockDigest(.v1(.sha512), SHA512.hash(data: short).withUnsafeBytes { Array($0) })!
        let k384 = BlockKey(segment: Fixture.segment(2, size: 48), index: 0)
        let k512 = BlockKey(segment: Fixture.segment(2, size: 64), index: 0)
        #expect(await cache.insert(k384, digest: d384, bytes: short, tag: nil, by: "p") == .stored)
        #expect(await cache.insert(k512, digest: d512, bytes: short, tag: nil, by: "p") == .stored)
        #expect(await cache.read(k384, digest: d384) == short)
        #expect(await cache.read(k512, digest: d512) == short)
        // A second insert of the same key is recognised, not stored twice.
        #expect(await cache.insert(key, digest: Fixture.sha256(data), bytes: data, tag: nil, by: "p") == .alreadyPresent)
        let stats = cache.statistics()
        #expect(stats.entries == 3)
        #expect(stats.bytes == Int64(Self.block + 2000))
        #expect(stats.hits == 3)
        #expect(stats.misses == 0)
        // A read with another digest than the stored one is a miss.
        #expect(await cache.read(key, digest: Fixture.sha256(short)) == nil)
        #expect(cache.statistics().misses == 1)
        await cache.close()
    }

    @Test func wrongDigestIsRefused() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let cache = try await open(dir)
        let data = Fixture.bytes(Self.block, seed: 2)
        var tampered = data
        tampered[100] ^= 1
        let key = BlockKey(segment: Fixture.segment(3), index: 0)
        #expect(await cache.insert(key, digest: Fixture.sha256(data), bytes: tampered, tag: Fixture.tag(1), by: "p") == .refused(.digestMismatch))
        #expect(await cache.read(key, digest: Fixture.sha256(data)) == nil)
        #expect(await cache.read(key, digest: Fixture.sha256(tampered)) == nil)
        #expect(!(await cache.contains(key)))
        #expect(Fixture.allocatedBytes(dir.path) == 0)
        // Too long for a V1 block.
        let long = Fixture.bytes(Self.block + 1, seed: 2)
        #expect(await cache.insert(key, digest: Fixture.sha256(long), bytes: long, tag: nil, by: "p") == .refused(.digestMismatch))
        let stats = cache.statistics()
        #expect(stats.rejectedOnEntry == 2)
        #expect(stats.entries == 0)
        // A key under two digests is two entries: neither takes the other's place.
        #expect(await cache.insert(key, digest: Fixture.sha256(data), bytes: data, tag: nil, by: "p") == .stored)
        #expect(await cache.insert(key, digest: Fixture.sha256(tampered), bytes: tampered, tag: nil, by: "q") == .stored)
        #expect(await cache.read(key, digest: Fixture.sha256(data)) == data)
        #expect(await cache.read(key, digest: Fixture.sha256(tampered)) == tampered)
        #expect(await cache.sizes(of: [(key, Fixture.sha256(data)), (key, Fixture.sha256(Array(data.prefix(9))))]) == [Self.block, nil])
        await cache.close()
    }

    @Test func v2SegmentIsStagedThenVerified() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let cache = try await open(dir)
        let segment = Fixture.bytes(100_000, seed: 3)
        let hod = Fixture.hashOfData(segment)
        let key = BlockKey(segment: Fixture.segment(4), index: 0)
        // Out of order and overlapping.
        #expect(await cache.stage(key, digest: hod, length: 100_000, offset: 60_000, bytes: Array(segment[60_000...]), tag: nil, by: "p")
            == .staged(coveredBytes: 40_000))
        #expect(await cache.read(key, digest: hod) == nil)
        #expect(!(await cache.contains(key)))
        #expect(await cache.stage(key, digest: hod, length: 100_000, offset: 0, bytes: Array(segment[0..<30_000]), tag: nil, by: "p")
            == .staged(coveredBytes: 70_000))
        #expect(cache.statistics().stagedBytes == 70_000)
        #expect(await cache.read(key, digest: hod) == nil)
        #expect(await cache.stage(key, digest: hod, length: 100_000, offset: 20_000, bytes: Array(segment[20_000..<65_000]), tag: nil, by: "p")
            == .stored)
        #expect(await cache.read(key, digest: hod) == segment)
        #expect(cache.statistics().stagedBytes == 0)
        #expect(cache.statistics().entries == 1)

        // A segment whose pieces do not hash to its HoD is dropped whole when complete.
        let other = Fixture.bytes(50_000, seed: 4)
        let otherHoD = Fixture.hashOfData(other)
        let otherKey = BlockKey(segment: Fixture.segment(5), index: 0)
        var bad = Array(other[25_000...])
        bad[0] ^= 0x80
        #expect(await cache.stage(otherKey, digest: otherHoD, length: 50_000, offset: 0, bytes: Array(other[..<25_000]), tag: nil, by: "p")
            == .staged(coveredBytes: 25_000))
        #expect(await cache.stage(otherKey, digest: otherHoD, length: 50_000, offset: 25_000, bytes: bad, tag: nil, by: "p")
            == .refused(.digestMismatch))
        #expect(await cache.read(otherKey, digest: otherHoD) == nil)
        #expect(cache.statistics().stagedBytes == 0)
        #expect(cache.statistics().rejectedOnEntry == 1)
        // The good bytes can then be staged again from scratch.
        #expect(await cache.stage(otherKey, digest: otherHoD, length: 50_000, offset: 25_000, bytes: Array(other[25_000...]), tag: nil, by: "p")
            == .staged(coveredBytes: 25_000))
        // A piece past the entry's length, or an entry longer than 128 KiB, is refused.
        #expect(await cache.stage(otherKey, digest: otherHoD, length: 50_000, offset: 49_999, bytes: [1, 2], tag: nil, by: "p")
            == .refused(.invalidLength))
        #expect(await cache.stage(otherKey, digest: otherHoD, length: 131_073, offset: 0, bytes: [1], tag: nil, by: "p") == .refused(.invalidLength))
        await cache.close()
    }

    /// A read of several entries in one trip gives the leading intact ones, in order: it stops at
    /// the first missing or corrupt entry (the corrupt one dropped), and counts hits and one miss.
    @Test func readLeadingStopsAtTheFirstMissOrCorruptEntry() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let cache = try await open(dir)
        // Block 1 is short: the bytes after it in the pack are not adjacent (entries start
        // aligned), so the run is read in more than one piece.
        let blocks = (0..<5).map { Fixture.bytes($0 == 1 ? 1000 : Self.block, seed: 40 + $0) }
        let keys = (0..<5).map { BlockKey(segment: Fixture.segment(40), index: UInt32($0)) }
        for index in 0..<4 {  // block 4 is never added
            #expect(await cache.insert(keys[index], digest: Fixture.sha256(blocks[index]), bytes: blocks[index], tag: nil, by: "p") == .stored)
        }
        let items = (0..<5).map { (key: keys[$0], digest: Fixture.sha256(blocks[$0])) }
        #expect(await cache.readLeading(items) == Array(blocks[0..<4].joined()))
        #expect(cache.statistics().hits == 4)
        #expect(cache.statistics().misses == 1)
        #expect(await cache.readLeading(Array(items[4...])) == [])
        #expect(cache.statistics().misses == 2)
        // Block 2's bytes change on disk: the run ends before it, and it is dropped.
        try Fixture.flip(try #require(await cache.location(of: keys[2])), byte: 100, mask: 0x80)
        #expect(await cache.readLeading(Array(items[0..<4])) == Array(blocks[0..<2].joined()))
        let stats = cache.statistics()
        #expect(stats.hits == 6)
        #expect(stats.misses == 3)
        #expect(stats.corruptOnRead == 1)
        #expect(!(await cache.contains(keys[2])))
        #expect(await cache.contains(keys[3]))
        // The pack cut 1,000 bytes into block 3: a run of 0, 1 and 3 gives 0 and 1 whole, and 3
        // is dropped (nothing of it is returned).
        let at3 = try #require(await cache.location(of: keys[3]))
        #expect(truncate(at3.path, off_t(at3.offset + 1000)) == 0)
        #expect(await cache.readLeading([items[0], items[1], items[3]]) == Array(blocks[0..<2].joined()))
        #expect(cache.statistics().corruptOnRead == 2)
        #expect(!(await cache.contains(keys[3])))
        await cache.close()
    }

    @Test func bytesChangedOnDiskAreAMiss() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let cache = try await open(dir)
        let data = Fixture.bytes(Self.block, seed: 5)
        let key = BlockKey(segment: Fixture.segment(6), index: 0)
        #expect(await cache.insert(key, digest: Fixture.sha256(data), bytes: data, tag: nil, by: "p") == .stored)
        #expect(Fixture.allocatedBytes(dir.path) == Self.block)
        // Flip one byte in place, same length.
        try Fixture.flip(try #require(await cache.location(of: key)), byte: 4096, mask: 0x01)
        #expect(await cache.read(key, digest: Fixture.sha256(data)) == nil)
        var stats = cache.statistics()
        #expect(stats.corruptOnRead == 1)
        #expect(stats.verificationFailures == 1)
        #expect(stats.misses == 1)
        #expect(stats.hits == 0)
        // Dropped: no longer listed, its bytes freed, and a second read is a plain miss.
        #expect(!(await cache.contains(key)))
        #expect(Fixture.allocatedBytes(dir.path) == 0)
        #expect(await cache.read(key, digest: Fixture.sha256(data)) == nil)
        #expect(cache.statistics().corruptOnRead == 1)

        // Bytes cut short and bytes gone count the same way.
        let second = BlockKey(segment: Fixture.segment(6), index: 1)
        let third = BlockKey(segment: Fixture.segment(6), index: 2)
        let data2 = Fixture.bytes(Self.block, seed: 6)
        let data3 = Fixture.bytes(Self.block, seed: 7)
        #expect(await cache.insert(second, digest: Fixture.sha256(data2), bytes: data2, tag: nil, by: "p") == .stored)
        #expect(await cache.insert(third, digest: Fixture.sha256(data3), bytes: data3, tag: nil, by: "p") == .stored)
        let at2 = try #require(await cache.location(of: second))
        let at3 = try #require(await cache.location(of: third))
        #expect(at2.path == at3.path && at3.offset > at2.offset)
        // The pack is cut 1,000 bytes into the third entry, then where the second starts.
        #expect(truncate(at3.path, off_t(at3.offset + 1000)) == 0)
        #expect(await cache.read(third, digest: Fixture.sha256(data3)) == nil)
        #expect(truncate(at2.path, off_t(at2.offset)) == 0)
        #expect(await cache.read(second, digest: Fixture.sha256(data2)) == nil)
        stats = cache.statistics()
        #expect(stats.corruptOnRead == 3)
        #expect(stats.entries == 0)
        #expect(stats.bytes == 0)
        await cache.close()
    }

    @Test func evictsLeastRecentlyUsedAtTheBound() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let cache = try await open(dir, capacity: Int64(3 * Self.block))
        let blocks = (0..<5).map { Fixture.bytes(Self.block, seed: 10 + UInt64($0)) }
        let keys = (0..<5).map { BlockKey(segment: Fixture.segment(7), index: UInt32($0)) }
        for i in 0..<3 {
            #expect(await cache.insert(keys[i], digest: Fixture.sha256(blocks[i]), bytes: blocks[i], tag: nil, by: "p") == .stored)
        }
        // Use 0, so 1 is now the least recently used.
        #expect(await cache.read(keys[0], digest: Fixture.sha256(blocks[0])) == blocks[0])
        #expect(await cache.insert(keys[3], digest: Fixture.sha256(blocks[3]), bytes: blocks[3], tag: nil, by: "p") == .stored)
        #expect(await cache.sizes(of: keys) == [Self.block, nil, Self.block, Self.block, nil])
        // Then 2 is the oldest.
        #expect(await cache.insert(keys[4], digest: Fixture.sha256(blocks[4]), bytes: blocks[4], tag: nil, by: "p") == .stored)
        #expect(await cache.sizes(of: keys) == [Self.block, nil, nil, Self.block, Self.block])
        let stats = cache.statistics()
        #expect(stats.evictions == 2)
        #expect(stats.entries == 3)
        #expect(stats.bytes == Int64(3 * Self.block))
        #expect(Fixture.allocatedBytes(dir.path) == 3 * Self.block)
        // An entry larger than the whole capacity is refused rather than emptying the cache.
        let small = try await BlockCache.open(BlockCacheConfiguration(directory: dir.path + "-small", capacityBytes: 1000))
        defer { try? FileManager.default.removeItem(atPath: dir.path + "-small") }
        #expect(await small.insert(keys[0], digest: Fixture.sha256(blocks[0]), bytes: blocks[0], tag: nil, by: "p") == .refused(.largerThanCapacity))
        await small.close()
        await cache.close()
    }

    /// A batch spanning several pipeline chunks, with tampered items in the first, a middle and
    /// the last chunk: exactly those are refused, the rest stored and readable, in order.
    @Test func batchWithSomeTamperedItemsStoresTheRest() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let cache = try await open(dir)
        let count = 11
        let tampered: Set<Int> = [1, 5, 10]
        let data = (0..<count).map { Fixture.bytes(4096, seed: 80 + UInt64($0)) }
        let keys = (0..<count).map { BlockKey(segment: Fixture.segment(18), index: UInt32($0)) }
        let items = (0..<count).map { i in
            var bytes = data[i]
            if tampered.contains(i) { bytes[7] ^= 0x40 }
            return BlockInsertion(key: keys[i], digest: Fixture.sha256(data[i]), bytes: bytes, tag: nil)
        }
        let outcomes = await cache.insert(items, by: "p")
        #expect(outcomes == (0..<count).map { tampered.contains($0) ? .refused(.digestMismatch) : .stored })
        for i in 0..<count {
            #expect(await cache.read(keys[i], digest: Fixture.sha256(data[i])) == (tampered.contains(i) ? nil : data[i]))
        }
        let stats = cache.statistics()
        #expect(stats.rejectedOnEntry == Int64(tampered.count))
        #expect(stats.entries == Int64(count - tampered.count))
        #expect(Fixture.allocatedBytes(dir.path) == (count - tampered.count) * 4096)
        await cache.close()
    }

    /// A removed entry's bytes are freed at once (a hole in its pack), and later entries are
    /// appended after it; every survivor reads back.
    @Test func removedEntriesFreeTheirBytes() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let cache = try await open(dir, capacity: Int64(2 * Self.block))
        let blocks = (0..<3).map { Fixture.bytes(Self.block, seed: 70 + UInt64($0)) }
        let short = Fixture.bytes(1000, seed: 73)
        let data = blocks + [short]
        let keys = (0..<4).map { BlockKey(segment: Fixture.segment(16), index: UInt32($0)) }
        for i in 0..<2 { #expect(await cache.insert(keys[i], digest: Fixture.sha256(data[i]), bytes: data[i], tag: nil, by: "p") == .stored) }
        #expect(Fixture.allocatedBytes(dir.path) == 2 * Self.block)
        // Block 2 evicts block 0, whose bytes are freed.
        #expect(await cache.insert(keys[2], digest: Fixture.sha256(data[2]), bytes: data[2], tag: nil, by: "p") == .stored)
        #expect(Fixture.allocatedBytes(dir.path) == 2 * Self.block)
        // The short block evicts block 1; it takes one 4 KiB file-system block.
        #expect(await cache.insert(keys[3], digest: Fixture.sha256(short), bytes: short, tag: nil, by: "p") == .stored)
        #expect(Fixture.allocatedBytes(dir.path) == Self.block + 4096)
        let at2 = try #require(await cache.location(of: keys[2]))
        let at3 = try #require(await cache.location(of: keys[3]))
        #expect(at2.offset == Int64(2 * Self.block) && at3.offset == Int64(3 * Self.block))
        #expect(await cache.read(keys[3], digest: Fixture.sha256(short)) == short)
        #expect(await cache.read(keys[2], digest: Fixture.sha256(data[2])) == data[2])
        #expect(await cache.read(keys[0], digest: Fixture.sha256(data[0])) == nil)
        #expect(cache.statistics().corruptOnRead == 0)
        await cache.close()
    }

    /// A pack takes appends up to 64 MiB, then the next one starts; a pack whose entries are all
    /// gone is deleted, and after a reopen appends go to a new pack.
    @Test func packsRollOverAndEmptyOnesAreDeleted() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let base = Fixture.bytes(Self.block, seed: 74)
        func item(_ i: Int, tag: UInt8) -> BlockInsertion {
            var bytes = base
            withUnsafeBytes(of: UInt64(i).littleEndian) { bytes.replaceSubrange(0..<8, with: $0) }
            return BlockInsertion(key: BlockKey(segment: Fixture.segment(17), index: UInt32(i)), digest: Fixture.sha256(bytes), bytes: bytes, tag: Fixture.tag(tag))
        }
        let first = (0..<1024).map { item($0, tag: 3) }  // exactly 64 MiB: fills the first pack
        let second = (1024..<1030).map { item($0, tag: 4) }
        do {
            let cache = try await open(dir)
            #expect(await cache.insert(first, by: "p").allSatisfy { $0 == .stored })
            #expect(await cache.insert(second, by: "p").allSatisfy { $0 == .stored })
            let packs = Set(await cache.locations().map(\.path))
            #expect(packs.count == 2)
            #expect(Fixture.packFiles(dir.path).count == 2)
            #expect(await cache.flush(tag: Fixture.tag(3), by: "p") == first.count)
            #expect(Fixture.packFiles(dir.path) == [try #require(await cache.location(of: second[0].key)).path])
            #expect(Fixture.allocatedBytes(dir.path) == second.count * Self.block)
            await cache.close()
        }
        let cache = try await open(dir)
        let more = item(2000, tag: 4)
        #expect(await cache.insert([more], by: "p") == [.stored])
        let packs = Fixture.packFiles(dir.path)
        #expect(packs.count == 2)
        #expect(try #require(await cache.location(of: more.key)).path != (try #require(await cache.location(of: second[0].key))).path)
        for entry in second + [more] { #expect(await cache.read(entry.key, digest: entry.digest) == Array(entry.bytes)) }
        await cache.close()
    }

    /// Rows whose pack is gone (deleted by hand) are dropped at open, and new packs are numbered
    /// after every pack a row named, so no row points into bytes it was not written with.
    @Test func rowsOfAPackThatIsGoneAreDroppedAtOpen() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let data = (0..<2).map { Fixture.bytes(4096, seed: 76 + UInt64($0)) }
        let keys = (0..<2).map { BlockKey(segment: Fixture.segment(21), index: UInt32($0)) }
        var gone = ""
        do {
            let cache = try await open(dir)
            #expect(await cache.insert(keys[0], digest: Fixture.sha256(data[0]), bytes: data[0], tag: nil, by: "p") == .stored)
            gone = try #require(await cache.location(of: keys[0])).path
            await cache.close()
        }
        #expect(unlink(gone) == 0)
        let cache = try await open(dir)
        #expect(cache.statistics().entries == 0)
        #expect(cache.statistics().bytes == 0)
        #expect(!(await cache.contains(keys[0])))
        #expect(await cache.insert(keys[1], digest: Fixture.sha256(data[1]), bytes: data[1], tag: nil, by: "p") == .stored)
        #expect(try #require(await cache.location(of: keys[1])).path != gone)
        #expect(await cache.read(keys[1], digest: Fixture.sha256(data[1])) == data[1])
        await cache.close()
    }

    /// A folder of the file-per-block layout (schema 0) is emptied at open and then works.
    @Test func aFolderOfTheFormerLayoutIsEmptiedAtOpen() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try FileManager.default.createDirectory(atPath: dir.path + "/blocks/ab", withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: dir.path + "/blocks/ab/1-ab00", contents: Data([1, 2, 3])))
        try FileManager.default.createDirectory(atPath: dir.path + "/spare", withIntermediateDirectories: true)
        // The former index: an entries table without pack or offset, with a row; user_version 0.
        var db: OpaquePointer?
        #expect(sqlite3_open(dir.path + "/index.sqlite", &db) == SQLITE_OK)
        #expect(sqlite3_exec(db, """
            CREATE TABLE entries(id INTEGER PRIMARY KEY, segment BLOB NOT NULL, block INTEGER NOT NULL,
                algo INTEGER NOT NULL, digest BLOB NOT NULL, size INTEGER NOT NULL, used INTEGER NOT NULL,
                anonymous INTEGER NOT NULL DEFAULT 0, UNIQUE(segment, block));
            INSERT INTO entries(segment, block, algo, digest, size, used) VALUES (x'00', 0, 1, x'ab00', 3, 1);
            """, nil, nil, nil) == SQLITE_OK)
        sqlite3_close(db)
        let data = Fixture.bytes(4096, seed: 75)
        let key = BlockKey(segment: Fixture.segment(20), index: 0)
        let cache = try await open(dir)
        #expect(cache.statistics().entries == 0)
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/blocks"))
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/spare"))
        #expect(await cache.insert(key, digest: Fixture.sha256(data), bytes: data, tag: nil, by: "p") == .stored)
        #expect(await cache.read(key, digest: Fixture.sha256(data)) == data)
        await cache.close()
    }

    @Test func survivesReopening() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let blocks = (0..<3).map { Fixture.bytes(Self.block, seed: 20 + UInt64($0)) }
        let keys = (0..<3).map { BlockKey(segment: Fixture.segment(8), index: UInt32($0)) }
        do {
            let cache = try await open(dir, capacity: Int64(3 * Self.block))
            for i in 0..<3 {
                #expect(await cache.insert(keys[i], digest: Fixture.sha256(blocks[i]), bytes: blocks[i], tag: Fixture.tag(9), by: "p") == .stored)
            }
            // Recency survives too: 0 used last, so 1 goes first after the restart.
            #expect(await cache.read(keys[0], digest: Fixture.sha256(blocks[0])) == blocks[0])
            await cache.close()
        }
        let cache = try await open(dir, capacity: Int64(3 * Self.block))
        #expect(cache.statistics().entries == 3)
        #expect(cache.statistics().bytes == Int64(3 * Self.block))
        #expect(await cache.sizes(of: keys) == [Self.block, Self.block, Self.block])
        let extra = Fixture.bytes(Self.block, seed: 29)
        #expect(await cache.insert(BlockKey(segment: Fixture.segment(8), index: 9), digest: Fixture.sha256(extra), bytes: extra, tag: nil, by: "p") == .stored)
        #expect(await cache.sizes(of: keys) == [Self.block, nil, Self.block])
        #expect(await cache.read(keys[0], digest: Fixture.sha256(blocks[0])) == blocks[0])
        #expect(await cache.read(keys[2], digest: Fixture.sha256(blocks[2])) == blocks[2])
        // Tags survive: flushing the tag removes what is left of them.
        #expect(await cache.flush(tag: Fixture.tag(9), by: "p") == 2)
        await cache.close()
    }

    @Test func flushRemovesExactlyWhatItsTagAdded() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let cache = try await open(dir)
        let (a, b) = (Fixture.tag(1), Fixture.tag(2))
        let data = (0..<5).map { Fixture.bytes(1000, seed: 30 + UInt64($0)) }
        let keys = (0..<5).map { BlockKey(segment: Fixture.segment(9), index: UInt32($0)) }
        func put(_ i: Int, _ tag: ContentTag?) async -> InsertOutcome {
            await cache.insert(keys[i], digest: Fixture.sha256(data[i]), bytes: data[i], tag: tag, by: "p")
        }
        #expect(await put(0, a) == .stored)  // a only
        #expect(await put(1, b) == .stored)  // b only
        #expect(await put(2, a) == .stored)  // a and b
        #expect(await put(2, b) == .alreadyPresent)
        #expect(await put(3, nil) == .stored)  // untagged, then a
        #expect(await put(3, a) == .alreadyPresent)
        #expect(await put(4, a) == .stored)  // a, then untagged
        #expect(await put(4, nil) == .alreadyPresent)
        // A staged piece under a.
        let segment = Fixture.bytes(2000, seed: 39)
        let stagedKey = BlockKey(segment: Fixture.segment(10), index: 0)
        let hod = Fixture.hashOfData(segment)
        #expect(await cache.stage(stagedKey, digest: hod, length: 2000, offset: 0, bytes: Array(segment[..<1000]), tag: a, by: "p")
            == .staged(coveredBytes: 1000))

        #expect(await cache.flush(tag: a, by: "p") == 1)
        #expect(await cache.sizes(of: keys) == [nil, 1000, 1000, 1000, 1000])
        #expect(cache.statistics().stagedBytes == 0)
        // The staged half went with it: the other half alone does not complete the segment.
        #expect(await cache.stage(stagedKey, digest: hod, length: 2000, offset: 1000, bytes: Array(segment[1000...]), tag: b, by: "p")
            == .staged(coveredBytes: 1000))
        // Flushing a again removes nothing.
        #expect(await cache.flush(tag: a, by: "p") == 0)
        #expect(await cache.flush(tag: b, by: "p") == 2)
        #expect(await cache.sizes(of: keys) == [nil, nil, nil, 1000, 1000])
        #expect(cache.statistics().entries == 2)
        #expect(cache.statistics().stagedBytes == 0)
        await cache.close()
    }

    @Test func identicalDataUnderTwoSegmentsIsStoredOnce() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let cache = try await open(dir)
        let data = Fixture.bytes(Self.block, seed: 40)
        let k1 = BlockKey(segment: Fixture.segment(11), index: 0)
        let k2 = BlockKey(segment: Fixture.segment(12), index: 5)
        #expect(await cache.insert(k1, digest: Fixture.sha256(data), bytes: data, tag: Fixture.tag(1), by: "p") == .stored)
        #expect(await cache.insert(k2, digest: Fixture.sha256(data), bytes: data, tag: Fixture.tag(2), by: "p") == .stored)
        #expect(Fixture.allocatedBytes(dir.path) == Self.block)
        #expect(try #require(await cache.location(of: k1)) == (try #require(await cache.location(of: k2))))
        #expect(await cache.flush(tag: Fixture.tag(1), by: "p") == 1)
        #expect(Fixture.allocatedBytes(dir.path) == Self.block)
        #expect(await cache.read(k2, digest: Fixture.sha256(data)) == data)
        #expect(await cache.flush(tag: Fixture.tag(2), by: "p") == 1)
        #expect(Fixture.allocatedBytes(dir.path) == 0)
        await cache.close()
    }

    @Test func concurrentInsertsAndReads() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let cache = try await open(dir)
        let tasks = 32
        let perTask = 8
        let failures = await withTaskGroup(of: Int.self) { group in
            for t in 0..<tasks {
                group.addTask {
                    var failures = 0
                    for i in 0..<perTask {
                        let data = Fixture.bytes(16_384, seed: UInt64(t * 1000 + i))
                        let key = BlockKey(segment: Fixture.segment(UInt8(t)), index: UInt32(i))
                        if await cache.insert(key, digest: Fixture.sha256(data), bytes: data, tag: Fixture.tag(UInt8(t % 4)), by: "p") != .stored {
                            failures += 1
                        }
                        if await cache.read(key, digest: Fixture.sha256(data)) != data { failures += 1 }
                        // Read a neighbour's block: either not there yet or exactly its bytes.
                        let other = (t + 1) % tasks
                        let otherData = Fixture.bytes(16_384, seed: UInt64(other * 1000 + i))
                        let got = await cache.read(BlockKey(segment: Fixture.segment(UInt8(other)), index: UInt32(i)), digest: Fixture.sha256(otherData))
                        if let got, got != otherData { failures += 1 }
                    }
                    return failures
                }
            }
            return await group.reduce(0, +)
        }
        #expect(failures == 0)
        let stats = cache.statistics()
        #expect(stats.entries == Int64(tasks * perTask))
        #expect(stats.bytes == Int64(tasks * perTask * 16_384))
        #expect(stats.hits + stats.misses == Int64(2 * tasks * perTask))
        #expect(stats.hits >= Int64(tasks * perTask))
        #expect(stats.corruptOnRead == 0)
        await cache.close()
    }

    /// One owner per folder: a second open while the first is open fails (after SQLite's busy
    /// timeout) without touching the owner's files; once the owner closes, it opens.
    @Test func aSecondOpenOfAnOpenFolderIsRefused() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let cache = try await open(dir)
        let data = Fixture.bytes(4096, seed: 90)
        let key = BlockKey(segment: Fixture.segment(19), index: 0)
        #expect(await cache.insert(key, digest: Fixture.sha256(data), bytes: data, tag: nil, by: "p") == .stored)
        // A pack without rows, which an opener would delete.
        let inFlight = dir.path + "/packs/999999"
        #expect(FileManager.default.createFile(atPath: inFlight, contents: Data(data)))
        await #expect(throws: BlockCacheOpenError.self) { _ = try await self.open(dir) }
        #expect(FileManager.default.fileExists(atPath: inFlight))
        #expect(await cache.read(key, digest: Fixture.sha256(data)) == data)
        await cache.close()
        let again = try await open(dir)
        #expect(await again.read(key, digest: Fixture.sha256(data)) == data)
        await again.close()
    }

    @Test func closedCacheRefusesAndMisses() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let cache = try await open(dir)
        await cache.close()
        let data = Fixture.bytes(100, seed: 50)
        let key = BlockKey(segment: Fixture.segment(13), index: 0)
        #expect(await cache.insert(key, digest: Fixture.sha256(data), bytes: data, tag: nil, by: "p") == .refused(.closed))
        #expect(await cache.read(key, digest: Fixture.sha256(data)) == nil)
        #expect(!(await cache.contains(key)))
    }
}
