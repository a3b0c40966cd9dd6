import BlockCache
import Crypto
import PCCRC

/// The deterministic blocks the crash child inserts (the test recomputes them).
enum CrashChildData {
    static let blockLength = 65_536

    static func segment(batch: UInt32) -> SegmentID {
        var bytes = [UInt8](repeating: 0xC5, count: 32)
        withUnsafeBytes(of: batch.littleEndian) { bytes.replaceSubrange(0..<4, with: $0) }
        guard let id = SegmentID(bytes) else { preconditionFailure("32 bytes make a segment ID") }
        return id
    }

    static func bytes(batch: UInt32, index: UInt32) -> [UInt8] {
        // splitmix64 of (batch, index): distinct blocks for distinct keys; xorshift needs state ≠ 0.
        var z = (UInt64(batch) << 32 | UInt64(index)) &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        var state = max(z ^ (z >> 31), 1)
        return (0..<blockLength).map { _ in
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return UInt8(truncatingIfNeeded: state)
        }
    }

    static func insertion(batch: UInt32, index: UInt32) -> BlockInsertion {
        let data = bytes(batch: batch, index: index)
        guard let digest = BlockDigest(.v1(.sha256), SHA256.hash(data: data).withUnsafeBytes({ Array($0) })) else {
            preconditionFailure("SHA-256 gives 32 bytes")
        }
        return BlockInsertion(key: BlockKey(segment: segment(batch: batch), index: index), digest: digest, bytes: data, tag: nil)
    }
}
