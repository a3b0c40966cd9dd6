/// Streaming version 1.0 hashing: 64 KiB blocks grouped into 32 MiB segments.
///
/// Keeps the running digest of the current block and the block hashes of the current segment;
/// never a content byte.
struct V1Hasher: Sendable {
    // MARK: - Constants

    /// `cbBlockSize`: 64 KiB.
    static let blockSize = 65_536
    /// V1 segment size: 32 MiB (512 blocks).
    static let segmentSize = 33_554_432
    /// Blocks in a full segment.
    static let blocksPerSegment = segmentSize / blockSize

    // MARK: - Properties

    let algorithm: V1HashAlgorithm
    private var block: DigestState
    private var bytesInBlock = 0
    private var blockHashes: [[UInt8]] = []
    private var segmentStart: UInt64 = 0
    private var segmentBytes = 0
    private(set) var segments: [SegmentHashes] = []

    // MARK: - Init

    init(algorithm: V1HashAlgorithm) {
        self.algorithm = algorithm
        self.block = DigestState(algorithm.digestKind)
        self.blockHashes.reserveCapacity(Self.blocksPerSegment)
    }

    // MARK: - API

    /// Feeds the next bytes; whole block-sized slices go to the digest in one call.
    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var index = 0
        let count = bytes.count
        while index < count {
            let step = Swift.min(Self.blockSize - bytesInBlock, count - index)
            block.update(UnsafeRawBufferPointer(rebasing: bytes[index..<(index + step)]))
            index += step
            bytesInBlock += step
            if bytesInBlock == Self.blockSize {
                finishBlock()
            }
        }
    }

    /// Closes the last (partial) block and segment.
    mutating func finalize() -> [SegmentHashes] {
        if bytesInBlock > 0 {
            finishBlock()
        }
        if !blockHashes.isEmpty {
            finishSegment()
        }
        return segments
    }

    // MARK: - Private

    private mutating func finishBlock() {
        blockHashes.append(block.finalize())
        segmentBytes += bytesInBlock
        bytesInBlock = 0
        block = DigestState(algorithm.digestKind)
        if blockHashes.count == Self.blocksPerSegment {
            finishSegment()
        }
    }

    private mutating func finishSegment() {
        let hashOfData = SegmentKeys.v1HashOfData(algorithm: algorithm, blockHashes: blockHashes)
        segments.append(
            SegmentHashes(
                offset: segmentStart, length: UInt32(segmentBytes), hashOfData: hashOfData, blockHashes: blockHashes))
        segmentStart += UInt64(segmentBytes)
        segmentBytes = 0
        blockHashes = []
        blockHashes.reserveCapacity(Self.blocksPerSegment)
    }
}
