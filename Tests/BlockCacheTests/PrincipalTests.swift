import BlockCache
import CSQLite
import Foundation
import PCCRC
import Testing

/// Principals in the cache (issue 18, items 1 to 3): tags are (principal, tag) pairs, entries
/// are identified by their digest too, staged pieces belong to their sender, and eviction takes
/// first from the principals above their fair share.
@Suite struct PrincipalTests {
    static let block = 65_536

    func open(_ dir: TemporaryDirectory, capacity: Int64 = 1 << 30, staging: Int64 = 64 << 20, share: Int64? = nil) async throws
        -> BlockCache
    {
        try await BlockCache.open(
            BlockCacheConfiguration(
                directory: dir.path, capacityBytes: capacity, stagingCapacityBytes: staging, sharePerPrincipalBytes: share))
    }

    static func blocks(_ count: Int, seed: UInt64, segment: UInt8) -> [(key: BlockKey, digest: BlockDigest, bytes: [UInt8])] {
        (0..<count).map { i in
            let bytes = Fixture.bytes(block, seed: seed + UInt64(i))
            return (BlockKey(segment: Fixture.segment(segment), index: UInt32(i)), Fixture.sha256(bytes), bytes)
        }
    }

    @Test func aFlushRemovesOnlyItsPrincipalsPairs() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let cache = try await open(dir)
        let tag = Fixture.tag(7)
        let blocks = Self.blocks(3, seed: 300, segment: 30)
        for b in blocks { #expect(await cache.insert(b.key, digest: b.digest, bytes: b.bytes, tag: tag, by: "bob") == .stored) }
        // Alice holds block 0 under the same tag, block 1 untagged.
        #expect(await cache.insert(blocks[0].key, digest: blocks[0].digest, bytes: blocks[0].bytes, tag: tag, by: "alice") == .alreadyPresent)
        #expect(await cache.insert(blocks[1].key, digest: blocks[1].digest, bytes: blocks[1].bytes, tag: nil, by: "alice") == .alreadyPresent)
        #expect(await cache.usage()["alice"]?.heldBytes == Int64(2 * Self.block))
        #expect(await cache.flush(tag: Fixture.tag(8), by: "alice") == 0)
        // Alice's flush lets go of block 0 only; everything stays (Bob holds it all).
        #expect(await cache.flush(tag: tag, by: "alice") == 1)
        #expect(cache.statistics().entries == 3)
        #expect(await cache.usage()["alice"]?.heldBytes == Int64(Self.block))
        // Bob's: all three counted; block 1 stays for Alice (untagged: no flush removes it).
        #expect(await cache.flush(tag: tag, by: "bob") == 3)
        #expect(await cache.sizes(of: blocks.map { ($0.key, $0.digest) }) == [nil, Self.block, nil])
        #expect(await cache.usage() == ["alice": PrincipalCacheUsage(heldBytes: Int64(Self.block))])
        await cache.close()
    }

    @Test func staleIndexesOfSchema2AreEmptiedAtOpen() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var cache = try await open(dir)
        let b = Self.blocks(1, seed: 310, segment: 31)[0]
        #expect(await cache.insert(b.key, digest: b.digest, bytes: b.bytes, tag: nil, by: "p") == .stored)
        await cache.close()
        var db: OpaquePointer?
        #expect(sqlite3_open(dir.path + "/index.sqlite", &db) == SQLITE_OK)
        #expect(sqlite3_exec(db, "PRAGMA user_version=2", nil, nil, nil) == SQLITE_OK)
        sqlite3_close(db)
        cache = try await open(dir)
        #expect(cache.statistics().entries == 0)
        #expect(await cache.read(b.key, digest: b.digest) == nil)
        #expect(Fixture.packFiles(dir.path).isEmpty)
        #expect(await cache.insert(b.key, digest: b.digest, bytes: b.bytes, tag: nil, by: "p") == .stored)
        await cache.close()
    }

    @Test func evictionTakesFromThePrincipalAboveItsShareFirst() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let cache = try await open(dir, capacity: Int64(8 * Self.block))
        let bob = Self.blocks(2, seed: 320, segment: 32)
        for b in bob { #expect(await cache.insert(b.key, digest: b.digest, bytes: b.bytes, tag: nil, by: "bob") == .stored) }
        let alice = Self.blocks(20, seed: 340, segment: 33)
        for b in alice { #expect(await cache.insert(b.key, digest: b.digest, bytes: b.bytes, tag: nil, by: "alice") == .stored) }
        // Bob's two are older than all of Alice's, and stay; Alice keeps her 6 newest.
        #expect(await cache.sizes(of: bob.map { ($0.key, $0.digest) }) == [Self.block, Self.block])
        #expect(await cache.sizes(of: alice.map { ($0.key, $0.digest) }) == Array(repeating: nil, count: 14) + Array(repeating: Self.block, count: 6))
        #expect(await cache.usage()["alice"]?.heldBytes == Int64(6 * Self.block))
        #expect(cache.statistics().evictions == 14)
        await cache.close()
    }

    @Test func withAConfiguredShareNobodyAboveItMeansLeastRecentlyUsed() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let cache = try await open(dir, capacity: Int64(4 * Self.block), share: Int64(3 * Self.block))
        let bob = Self.blocks(2, seed: 350, segment: 34)
        let alice = Self.blocks(4, seed: 360, segment: 35)
        for b in bob { #expect(await cache.insert(b.key, digest: b.digest, bytes: b.bytes, tag: nil, by: "bob") == .stored) }
        for b in alice[0..<3] { #expect(await cache.insert(b.key, digest: b.digest, bytes: b.bytes, tag: nil, by: "alice") == .stored) }
        // 5 blocks in 4, nobody above 3: Bob's oldest goes.
        #expect(await cache.sizes(of: bob.map { ($0.key, $0.digest) }) == [nil, Self.block])
        // Alice's fourth puts her above 3: her oldest goes, not Bob's.
        #expect(await cache.insert(alice[3].key, digest: alice[3].digest, bytes: alice[3].bytes, tag: nil, by: "alice") == .stored)
        #expect(await cache.sizes(of: bob.map { ($0.key, $0.digest) }) == [nil, Self.block])
        #expect(await cache.sizes(of: alice.map { ($0.key, $0.digest) }) == [nil, Self.block, Self.block, Self.block])
        await cache.close()
    }

    @Test func stagedPiecesAreKeptPerPrincipal() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let cache = try await open(dir)
        let segment = Fixture.bytes(100_000, seed: 370)
        let hod = Fixture.hashOfData(segment)
        let key = BlockKey(segment: Fixture.segment(36), index: 0)
        // Alice's junk at the start, then Bob's pieces: his own entry completes and verifies.
        #expect(await cache.stage(key, digest: hod, length: 100_000, offset: 0, bytes: [UInt8](repeating: 0xEE, count: 1_000), tag: nil, by: "alice")
            == .staged(coveredBytes: 1_000))
        #expect(await cache.stage(key, digest: hod, length: 100_000, offset: 1_000, bytes: Array(segment[1_000...]), tag: nil, by: "bob")
            == .staged(coveredBytes: 99_000))
        #expect(await cache.stage(key, digest: hod, length: 100_000, offset: 0, bytes: Array(segment[..<1_000]), tag: nil, by: "bob") == .stored)
        #expect(await cache.read(key, digest: hod) == segment)
        // Alice's junk, completed, fails on its own; the stored entry is untouched.
        #expect(await cache.stage(key, digest: hod, length: 100_000, offset: 1_000, bytes: Array(segment[1_000...]), tag: nil, by: "alice")
            == .alreadyPresent)
        #expect(await cache.read(key, digest: hod) == segment)
        #expect(await cache.usage()["bob"]?.heldBytes == 100_000)
        await cache.close()
    }

    @Test func stagedRunsAreBoundedAndTheirRowsCounted() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let cache = try await open(dir)
        let segment = Fixture.bytes(1_000, seed: 380)
        let hod = Fixture.hashOfData(segment)
        let key = BlockKey(segment: Fixture.segment(37), index: 0)
        let runs = BlockCache.maxStagedRuns
        for i in 0..<runs {
            #expect(await cache.stage(key, digest: hod, length: 1_000, offset: 2 * i, bytes: [segment[2 * i]], tag: nil, by: "p")
                == .staged(coveredBytes: i + 1))
        }
        #expect(await cache.usage()["p"]?.stagingBytes == Int64(runs) * (1 + BlockCache.stagedRunOverhead))
        // One more disjoint run is refused; one joining two runs is taken.
        #expect(await cache.stage(key, digest: hod, length: 1_000, offset: 2 * runs, bytes: [segment[2 * runs]], tag: nil, by: "p")
            == .refused(.tooFragmented))
        #expect(await cache.stage(key, digest: hod, length: 1_000, offset: 1, bytes: [segment[1]], tag: nil, by: "p")
            == .staged(coveredBytes: runs + 1))
        #expect(cache.statistics().stagedBytes == Int64(runs + 1))
        // Another principal's runs are its own: it may start afresh.
        #expect(await cache.stage(key, digest: hod, length: 1_000, offset: 2 * runs, bytes: [segment[2 * runs]], tag: nil, by: "q")
            == .staged(coveredBytes: 1))
        // The rest in one piece completes it.
        #expect(await cache.stage(key, digest: hod, length: 1_000, offset: 0, bytes: segment, tag: nil, by: "p") == .stored)
        #expect(await cache.usage()["p"] == PrincipalCacheUsage(heldBytes: 1_000))
        await cache.close()
    }

    @Test func stagingEvictionTakesFromThePrincipalAboveItsShareFirst() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let cache = try await open(dir, staging: 400_000)
        let bobSegment = Fixture.bytes(100_000, seed: 390)
        let bobKey = BlockKey(segment: Fixture.segment(38), index: 0)
        let hod = Fixture.hashOfData(bobSegment)
        #expect(await cache.stage(bobKey, digest: hod, length: 100_000, offset: 0, bytes: Array(bobSegment[..<50_000]), tag: nil, by: "bob")
            == .staged(coveredBytes: 50_000))
        for i in 0..<20 {
            let junk = Fixture.bytes(100_000, seed: 400 + UInt64(i))
            let key = BlockKey(segment: Fixture.segment(UInt8(40 + i)), index: 0)
            _ = await cache.stage(key, digest: Fixture.hashOfData(junk), length: 100_000, offset: 0, bytes: Array(junk[..<60_000]), tag: nil, by: "alice")
        }
        #expect(cache.statistics().stagingEvictions > 0)
        #expect((await cache.usage()["alice"]?.stagingBytes ?? 0) <= 400_000 - 50_064)
        // Bob's half survived: the other half completes it.
        #expect(await cache.stage(bobKey, digest: hod, length: 100_000, offset: 50_000, bytes: Array(bobSegment[50_000...]), tag: nil, by: "bob")
            == .stored)
        await cache.close()
    }
}
