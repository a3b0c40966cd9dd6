import BlockCache
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The cache's files are its owner's alone whatever the process's umask, and a pack is never
/// written through a link someone put in its place (issue 18, item 7).
@Suite(.serialized) struct FileModeTests {
    static func mode(_ path: String) -> Int? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return Int(info.st_mode & 0o777)
    }

    @Test func indexAndPacksAreCreated0600UnderAnOpenUmask() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let previous = umask(0o022)
        defer { umask(previous) }
        let cache = try await BlockCache.open(BlockCacheConfiguration(directory: dir.path, capacityBytes: 1 << 30))
        let data = Fixture.bytes(65_536, seed: 7)
        #expect(await cache.insert(BlockKey(segment: Fixture.segment(1), index: 0), digest: Fixture.sha256(data), bytes: data, tag: nil, by: "test") == .stored)
        // The WAL (and, when SQLite makes one, its shared-memory index) is created with the database's mode.
        let files = ["index.sqlite", "index.sqlite-wal", "index.sqlite-shm"].map { dir.path + "/" + $0 }.filter { Self.mode($0) != nil }
            + Fixture.packFiles(dir.path)
        #expect(files.count >= 3, "\(files)")
        for file in files {
            #expect(Self.mode(file) == 0o600, "\(file): \(String(Self.mode(file) ?? -1, radix: 8))")
        }
        #expect(Self.mode(dir.path + "/packs") == 0o700)
        await cache.close()
    }

    @Test func aLinkInANewPacksPlaceIsNotFollowed() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let victim = dir.path + "-victim"
        defer { try? FileManager.default.removeItem(atPath: victim) }
        let original = Array("keep me".utf8)
        #expect(FileManager.default.createFile(atPath: victim, contents: Data(original)))
        let cache = try await BlockCache.open(BlockCacheConfiguration(directory: dir.path, capacityBytes: 1 << 30))
        // The first pack of a fresh cache is packs/1.
        try FileManager.default.createSymbolicLink(atPath: dir.path + "/packs/1", withDestinationPath: victim)
        let data = Fixture.bytes(65_536, seed: 8)
        let key = BlockKey(segment: Fixture.segment(2), index: 0)
        #expect(await cache.insert(key, digest: Fixture.sha256(data), bytes: data, tag: nil, by: "test") != .stored)
        #expect(FileManager.default.contents(atPath: victim).map(Array.init) == original, "written through the link")
        await cache.close()
    }
}
