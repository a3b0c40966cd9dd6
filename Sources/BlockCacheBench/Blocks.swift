import BlockCache
import Crypto

/// The blocks the bench inserts.
enum Blocks {
    static let length = 65_536

    /// 1,024 random blocks; block i is pool[i % 1024] with its first 8 bytes replaced by i, so every
    /// block (and digest) is distinct and producing one costs a 64 KiB copy.
    static let pool: [[UInt8]] = (0..<1024).map { _ in (0..<length / 8).flatMap { _ in withUnsafeBytes(of: UInt64.random(in: .min ... .max)) { Array($0) } } }

    /// The bytes of block i.
    static func bytes(_ i: Int) -> [UInt8] {
        var bytes = pool[i % pool.count]
        withUnsafeBytes(of: UInt64(i).littleEndian) { bytes.replaceSubrange(0..<8, with: $0) }
        return bytes
    }

    /// The digests of blocks 0..<count, computed before any timing (a retrieval client takes
    /// them from the content information, at no cost).
    static func digests(_ count: Int) -> [BlockDigest] {
        (0..<count).map { i in
            guard let digest = BlockDigest(.v1(.sha256), SHA256.hash(data: bytes(i)).withUnsafeBytes({ Array($0) })) else {
                preconditionFailure("32 bytes")
            }
            return digest
        }
    }

    /// Block i with its precomputed digest.
    static func block(_ i: Int, _ digest: BlockDigest) -> BlockInsertion {
        let bytes = bytes(i)
        return BlockInsertion(key: key(i), digest: digest, bytes: bytes, tag: nil)
    }

    static func key(_ i: Int) -> BlockKey {
        var segment = [UInt8](repeating: 0xB7, count: 32)
        withUnsafeBytes(of: UInt64(i / 512).littleEndian) { segment.replaceSubrange(0..<8, with: $0) }
        guard let id = SegmentID(segment) else { preconditionFailure("fixed sizes") }
        return BlockKey(segment: id, index: UInt32(i % 512))
    }
}
