/// One segment of version 1.0 content information: its `SegmentDescription` (MS-PCCRC §2.3.1.1)
/// together with its `SegmentContentBlocks` (§2.3.1.2).
public struct SegmentDescriptionV1: Sendable, Equatable {
    /// `ullOffsetInContent`: absolute content offset of the segment start.
    public var offsetInContent: UInt64
    /// `cbSegment`: full segment length, regardless of the range.
    public var segmentLength: UInt32
    /// `cbBlockSize`: always 65,536.
    public var blockSize: UInt32
    /// `SegmentHashOfData` (HoD), digest-size bytes.
    public var hashOfData: [UInt8]
    /// `SegmentSecret` (Kp), digest-size bytes.
    public var segmentSecret: [UInt8]
    /// Block hashes of blocks 0 through the last block intersecting the range (hash *j* is block *j*).
    public var blockHashes: [[UInt8]]

    /// Creates a segment description.
    /// - Parameters:
    ///   - offsetInContent: Absolute content offset of the segment start.
    ///   - segmentLength: Full segment length.
    ///   - blockSize: Block size (65,536 for valid content information).
    ///   - hashOfData: HoD.
    ///   - segmentSecret: Kp.
    ///   - blockHashes: Block hashes from block 0 on.
    public init(
        offsetInContent: UInt64, segmentLength: UInt32, blockSize: UInt32 = 65_536,
        hashOfData: [UInt8], segmentSecret: [UInt8], blockHashes: [[UInt8]]
    ) {
        self.offsetInContent = offsetInContent
        self.segmentLength = segmentLength
        self.blockSize = blockSize
        self.hashOfData = hashOfData
        self.segmentSecret = segmentSecret
        self.blockHashes = blockHashes
    }

    /// Number of blocks in the full segment (`ceil(segmentLength / blockSize)`).
    public var fullBlockCount: Int {
        blockSize == 0 ? 0 : Int((UInt64(segmentLength) + UInt64(blockSize) - 1) / UInt64(blockSize))
    }
}
