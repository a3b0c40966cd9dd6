/// Streaming version 2.0 hashing: `ContentDefinedChunker` cuts segments and each segment's bytes
/// go straight into a running SHA-512, so no content byte is kept at all.
struct V2Hasher: Sendable {
    // MARK: - Properties

    private var chunker = ContentDefinedChunker()
    private var segment = DigestState(.sha512)
    private var segmentStart: UInt64 = 0
    private var segmentBytes = 0
    private(set) var segments: [SegmentHashes] = []

    // MARK: - API

    /// Feeds the next bytes.
    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var rest = bytes
        while !rest.isEmpty {
            if let cut = chunker.nextBoundary(in: rest) {
                segment.update(UnsafeRawBufferPointer(rebasing: rest[..<cut]))
                segmentBytes += cut
                finishSegment()
                rest = UnsafeRawBufferPointer(rebasing: rest[cut...])
            } else {
                segment.update(rest)
                segmentBytes += rest.count
                return
            }
        }
    }

    /// Closes the last segment (the content's end always ends a segment).
    mutating func finalize() -> [SegmentHashes] {
        if segmentBytes > 0 {
            finishSegment()
        }
        return segments
    }

    // MARK: - Private

    private mutating func finishSegment() {
        let hashOfData = Array(segment.finalize().prefix(32))
        segments.append(
            SegmentHashes(offset: segmentStart, length: UInt32(segmentBytes), hashOfData: hashOfData, blockHashes: []))
        segmentStart += UInt64(segmentBytes)
        segmentBytes = 0
        segment = DigestState(.sha512)
    }
}
