/// The digests of one segment.
public struct SegmentHashes: Sendable, Equatable {
    /// Absolute offset of the segment in the content.
    public let offset: UInt64
    /// Segment length in bytes (`cbSegment`).
    public let length: UInt32
    /// `HoD`: V1 `H(BlockHash_0 + ... + BlockHash_n-1)`, V2 `SHA-512(segment)[0..<32]`.
    public let hashOfData: [UInt8]
    /// V1: one hash per 64 KiB block, in block order; V2: empty.
    public let blockHashes: [[UInt8]]

    /// Creates a segment description from its digests.
    /// - Parameters:
    ///   - offset: Absolute offset of the segment in the content.
    ///   - length: Segment length in bytes.
    ///   - hashOfData: The segment's `HoD`.
    ///   - blockHashes: V1 block hashes (empty for version 2.0).
    public init(offset: UInt64, length: UInt32, hashOfData: [UInt8], blockHashes: [[UInt8]]) {
        self.offset = offset
        self.length = length
        self.hashOfData = hashOfData
        self.blockHashes = blockHashes
    }
}
