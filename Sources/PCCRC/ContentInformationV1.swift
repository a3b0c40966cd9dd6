/// Version 1.0 content information (MS-PCCRC §2.3), all integers little-endian.
///
/// Layout: an 18-byte header (`Version` 0x0100, `dwHashAlgo`, `dwOffsetInFirstSegment`,
/// `dwReadBytesInLastSegment`, `cSegments`), then `cSegments` segment descriptions of
/// `16 + 2·D` bytes, then `cSegments` block lists of `4 + cBlocks·D` bytes (D = digest size).
public struct ContentInformationV1: Sendable, Equatable {
    // MARK: - Properties

    /// `dwHashAlgo`.
    public var hashAlgorithm: V1HashAlgorithm
    /// `dwOffsetInFirstSegment`: range start inside the first listed segment.
    public var offsetInFirstSegment: UInt32
    /// `dwReadBytesInLastSegment`: bytes of the range in the last listed segment, 0 meaning to its
    /// end; with a single listed segment, the range length counted from `offsetInFirstSegment`.
    public var readBytesInLastSegment: UInt32
    /// The listed segments (`cSegments` of them) with their block lists.
    public var segments: [SegmentDescriptionV1]

    /// V1 segment size (32 MiB); every listed segment but the content's last has this length.
    public static let segmentSize: UInt32 = 33_554_432
    /// `cbBlockSize` (64 KiB).
    public static let blockSize: UInt32 = 65_536
    /// The `Version` word.
    public static let versionWord: UInt16 = 0x0100

    // MARK: - Init

    /// Creates content information from its fields.
    /// - Parameters:
    ///   - hashAlgorithm: `dwHashAlgo`.
    ///   - offsetInFirstSegment: `dwOffsetInFirstSegment`.
    ///   - readBytesInLastSegment: `dwReadBytesInLastSegment`.
    ///   - segments: The listed segments.
    public init(
        hashAlgorithm: V1HashAlgorithm, offsetInFirstSegment: UInt32, readBytesInLastSegment: UInt32,
        segments: [SegmentDescriptionV1]
    ) {
        self.hashAlgorithm = hashAlgorithm
        self.offsetInFirstSegment = offsetInFirstSegment
        self.readBytesInLastSegment = readBytesInLastSegment
        self.segments = segments
    }

    // MARK: - API

    /// The content range described: from the first segment's offset plus
    /// `offsetInFirstSegment` to the end given by `readBytesInLastSegment` (empty for no segments).
    public var contentRange: Range<UInt64> {
        guard let first = segments.first, let last = segments.last else { return 0..<0 }
        let start = first.offsetInContent &+ UInt64(offsetInFirstSegment)
        let end = last.offsetInContent &+ UInt64(rangeEndInLastSegment(last))
        return start..<Swift.max(start, end)
    }

    /// The byte-exact serialization (fields written as given).
    /// - Returns: The MS-PCCRC V1 structure.
    public func serialize() -> [UInt8] {
        let d = hashAlgorithm.digestSize
        let blockBytes = segments.reduce(0) { $0 + 4 + $1.blockHashes.count * d }
        var writer = ByteWriter(capacity: 18 + segments.count * (16 + 2 * d) + blockBytes)
        writer.u16LE(Self.versionWord)
        writer.u32LE(hashAlgorithm.rawValue)
        writer.u32LE(offsetInFirstSegment)
        writer.u32LE(readBytesInLastSegment)
        writer.u32LE(UInt32(truncatingIfNeeded: segments.count))
        for segment in segments {
            writer.u64LE(segment.offsetInContent)
            writer.u32LE(segment.segmentLength)
            writer.u32LE(segment.blockSize)
            writer.append(segment.hashOfData)
            writer.append(segment.segmentSecret)
        }
        for segment in segments {
            writer.u32LE(UInt32(truncatingIfNeeded: segment.blockHashes.count))
            for hash in segment.blockHashes {
                writer.append(hash)
            }
        }
        return writer.bytes
    }

    /// Parses version 1.0 content information strictly.
    /// - Parameter bytes: The whole structure, nothing before or after it.
    /// - Returns: The parsed fields.
    /// - Throws: `.versionUnsupported` for a version word other than 0x0100 or an unknown
    ///   `dwHashAlgo`; `.cannotParse` for truncated data, bad sizes, inconsistent segments,
    ///   a `cBlocks` that does not match the range, or trailing bytes.
    public static func parse(_ bytes: [UInt8]) throws(PCCRCError) -> ContentInformationV1 {
        var reader = ByteReader(bytes)
        guard try reader.u16LE("Version") == versionWord else { throw .versionUnsupported }
        guard let algorithm = V1HashAlgorithm(rawValue: try reader.u32LE("dwHashAlgo")) else {
            throw .versionUnsupported
        }
        let offsetInFirst = try reader.u32LE("dwOffsetInFirstSegment")
        let readBytes = try reader.u32LE("dwReadBytesInLastSegment")
        let count = Int(try reader.u32LE("cSegments"))
        let d = algorithm.digestSize
        // Each segment needs at least its description, a cBlocks and one block hash.
        try reader.need(count * (16 + 2 * d + 4 + d), "\(count) segments")
        var segments = [SegmentDescriptionV1]()
        segments.reserveCapacity(count)
        for index in 0..<count {
            let segment = SegmentDescriptionV1(
                offsetInContent: try reader.u64LE("ullOffsetInContent"),
                segmentLength: try reader.u32LE("cbSegment"),
                blockSize: try reader.u32LE("cbBlockSize"),
                hashOfData: try reader.bytes(d, "SegmentHashOfData"),
                segmentSecret: try reader.bytes(d, "SegmentSecret"),
                blockHashes: [])
            try validate(segment, index: index, previous: segments.last)
            segments.append(segment)
        }
        let header = ContentInformationV1(
            hashAlgorithm: algorithm, offsetInFirstSegment: offsetInFirst, readBytesInLastSegment: readBytes,
            segments: segments)
        try header.validateRange()
        for index in segments.indices {
            let cBlocks = Int(try reader.u32LE("cBlocks"))
            let expected = header.expectedBlockCount(index)
            guard cBlocks == expected else {
                throw .cannotParse("cBlocks mismatch in segment \(index): \(cBlocks), expected \(expected)")
            }
            try reader.need(cBlocks * d, "\(cBlocks) block hashes")
            var hashes = [[UInt8]]()
            hashes.reserveCapacity(cBlocks)
            for _ in 0..<cBlocks {
                hashes.append(try reader.bytes(d, "BlockHash"))
            }
            segments[index].blockHashes = hashes
        }
        try reader.expectEnd()
        return ContentInformationV1(
            hashAlgorithm: algorithm, offsetInFirstSegment: offsetInFirst, readBytesInLastSegment: readBytes,
            segments: segments)
    }

    // MARK: - Private

    /// Range end relative to the start of `last` (the last listed segment).
    private func rangeEndInLastSegment(_ last: SegmentDescriptionV1) -> UInt32 {
        if readBytesInLastSegment == 0 { return last.segmentLength }
        if segments.count == 1 { return offsetInFirstSegment &+ readBytesInLastSegment }
        return readBytesInLastSegment
    }

    /// Blocks 0 through the last block intersecting the range: all of them except in the last
    /// listed segment, where the list stops at the range end (PEERDIST.md §5.3).
    private func expectedBlockCount(_ index: Int) -> Int {
        let segment = segments[index]
        guard index == segments.count - 1 else { return segment.fullBlockCount }
        let end = UInt64(rangeEndInLastSegment(segment))
        return Int((end + UInt64(Self.blockSize) - 1) / UInt64(Self.blockSize))
    }

    private func validateRange() throws(PCCRCError) {
        guard let first = segments.first, let last = segments.last else {
            guard offsetInFirstSegment == 0, readBytesInLastSegment == 0 else {
                throw .cannotParse("range fields set without segments")
            }
            return
        }
        guard offsetInFirstSegment < first.segmentLength else {
            throw .cannotParse("dwOffsetInFirstSegment \(offsetInFirstSegment) outside the first segment")
        }
        let end = UInt64(offsetInFirstSegment) + UInt64(readBytesInLastSegment)
        let fits = segments.count == 1 ? end <= UInt64(last.segmentLength) : readBytesInLastSegment <= last.segmentLength
        guard fits else {
            throw .cannotParse("dwReadBytesInLastSegment \(readBytesInLastSegment) outside the last segment")
        }
    }

    private static func validate(
        _ segment: SegmentDescriptionV1, index: Int, previous: SegmentDescriptionV1?
    ) throws(PCCRCError) {
        guard segment.blockSize == blockSize else {
            throw .cannotParse("cbBlockSize \(segment.blockSize) in segment \(index), expected 65536")
        }
        guard segment.segmentLength >= 1, segment.segmentLength <= segmentSize else {
            throw .cannotParse("cbSegment \(segment.segmentLength) in segment \(index)")
        }
        guard segment.offsetInContent % UInt64(segmentSize) == 0,
            segment.offsetInContent <= UInt64.max - UInt64(segment.segmentLength)
        else {
            throw .cannotParse("ullOffsetInContent \(segment.offsetInContent) in segment \(index)")
        }
        if let previous {
            guard previous.segmentLength == segmentSize,
                segment.offsetInContent == previous.offsetInContent + UInt64(previous.segmentLength)
            else {
                throw .cannotParse("segment \(index) does not follow segment \(index - 1)")
            }
        }
    }
}
