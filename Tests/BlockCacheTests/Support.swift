import BlockCache
import Crypto
import Foundation
import PCCRC
import Testing

/// A fresh folder under the temporary directory, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init() {
        path = NSTemporaryDirectory() + "blockcache-test-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

extension BlockCache {
    /// Whether an entry of `key` is cached under any digest (the index only).
    func contains(_ key: BlockKey) async -> Bool { await location(of: key) != nil }

    /// The length of an entry of each key under any digest, nil where none (the index only).
    func sizes(of keys: [BlockKey]) async -> [Int?] {
        var sizes: [Int?] = []
        for key in keys { sizes.append(await location(of: key).map { Int($0.length) }) }
        return sizes
    }
}

enum Fixture {
    /// Deterministic bytes (xorshift) from a seed.
    static func bytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = mix(seed ^ 0x5EED)
        return (0..<count).map { _ in
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return UInt8(truncatingIfNeeded: state)
        }
    }

    /// splitmix64 of `x` (a bijection), never 0, as xorshift needs.
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return max(z ^ (z >> 31), 1)
    }

    static func segment(_ n: UInt8, size: Int = 32) -> SegmentID {
        SegmentID([UInt8](repeating: n, count: size))!
    }

    static func tag(_ n: UInt8) -> ContentTag {
        ContentTag([UInt8](repeating: n, count: 16))!
    }

    static func sha256(_ bytes: [UInt8]) -> BlockDigest {
        BlockDigest(.v1(.sha256), SHA256.hash(data: bytes).withUnsafeBytes { Array($0) })!
    }

    static func hashOfData(_ bytes: [UInt8]) -> BlockDigest {
        BlockDigest(.v2, SHA512.hash(data: bytes).withUnsafeBytes { Array($0.prefix(32)) })!
    }

    /// Every pack file of a cache folder.
    static func packFiles(_ dir: String) -> [String] {
        let root = dir + "/packs"
        return ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).map { root + "/" + $0 }
    }

    /// The bytes of a cache folder's pack files that hold data: each file's data ranges
    /// (`SEEK_DATA` / `SEEK_HOLE`) within its size, so punched holes are left out, and so are the
    /// blocks the cache reserves past the newest pack's end.
    static func allocatedBytes(_ dir: String) -> Int {
        let seekData: Int32 = 3, seekHole: Int32 = 4  // Linux's values
        return packFiles(dir).reduce(0) { total, path in
            let fd = open(path, O_RDONLY)
            guard fd >= 0 else { return total }
            defer { close(fd) }
            let size = lseek(fd, 0, SEEK_END)
            var sum = 0
            var position: off_t = 0
            while position < size {
                let data = lseek(fd, position, seekData)
                guard data >= 0, data < size else { break }
                let hole = min(lseek(fd, data, seekHole), size)
                // Whole file-system blocks, as they are allocated.
                sum += Int((hole + 4095) / 4096 * 4096 - data)
                position = hole
            }
            return total + sum
        }
    }

    /// XORs byte `index` of a stored entry (at `location`, as `BlockCache.location(of:)` gives it)
    /// with `mask`, in place.
    static func flip(_ location: (path: String, offset: Int64, length: Int64), byte index: Int, mask: UInt8 = 0x5A) throws {
        let handle = try #require(FileHandle(forUpdatingAtPath: location.path))
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(location.offset) + UInt64(index))
        let original = try #require(try handle.read(upToCount: 1))
        try handle.seek(toOffset: UInt64(location.offset) + UInt64(index))
        try handle.write(contentsOf: Data([original[0] ^ mask]))
    }

    /// The blocks the crash child writes (the same formula as `BlockCacheCrashChild`).
    static func childInsertion(batch: UInt32, index: UInt32) -> (key: BlockKey, digest: BlockDigest, bytes: [UInt8]) {
        var seg = [UInt8](repeating: 0xC5, count: 32)
        withUnsafeBytes(of: batch.littleEndian) { seg.replaceSubrange(0..<4, with: $0) }
        var state = mix(UInt64(batch) << 32 | UInt64(index))
        let data: [UInt8] = (0..<65_536).map { _ in
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return UInt8(truncatingIfNeeded: state)
        }
        return (BlockKey(segment: SegmentID(seg)!, index: index), sha256(data), data)
    }
}
