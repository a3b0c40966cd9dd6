/// Version 2.0 content information (MS-PCCRC §2.4), all integers big-endian.
///
/// Layout: a 31-byte header (`bMinorVersion` 0, `bMajorVersion` 2, `bHashAlgo` 4,
/// `ullStartInContent`, `ullIndexOfFirstSegment`, `dwOffsetInFirstSegment`, `ullLengthOfRange`)
/// followed by chunks (`bChunkType` 0, `dwChunkDataLength`, then 68-byte segment descriptions)
/// up to the end of the data. `serialize()` writes all segments in ONE chunk, as Windows does;
/// `parse(_:)` accepts several chunks and concatenates their segments.
public struct ContentInformationV2: Sendable, Equatable {
    // MARK: - Properties

    /// `ullStartInContent`: content offset where the first listed segment starts.
    public var startInContent: UInt64
    /// `ullIndexOfFirstSegment`: zero-based index of the first listed segment in the content.
    public var indexOfFirstSegment: UInt64
    /// `dwOffsetInFirstSegment`: range start inside the first listed segment.
    public var offsetInFirstSegment: UInt32
    /// `ullLengthOfRange`: range length; 0 means the entire content.
    public var lengthOfRange: UInt64
    /// The listed segments.
    public var segments: [SegmentDescriptionV2]

    /// `bHashAlgo` value for SHA-512 truncated to 256 bits, the only valid one.
    public static let hashAlgorithmSHA512Truncated: UInt8 = 0x04
    /// Largest `cbSegment` (128 KiB).
    public static let maximumSegmentLength: UInt32 = 131_072
    /// Header size in bytes.
    static let headerSize = 31
    /// Chunk header size (`bChunkType` + `dwChunkDataLength`).
    static let chunkHeaderSize = 5

    // MARK: - Init

    /// Creates content information from its fields.
    /// - Parameters:
    ///   - startInContent: `ullStartInContent`.
    ///   - indexOfFirstSegment: `ullIndexOfFirstSegment`.
    ///   - offsetInFirstSegment: `dwOffsetInFirstSegment`.
    ///   - lengthOfRange: `ullLengthOfRange` (0 = whole content).
    ///   - segments: The listed segments.
    public init(
        startInContent: UInt64, indexOfFirstSegment: UInt64, offsetInFirstSegment: UInt32, lengthOfRange: UInt64,
        segments: [SegmentDescriptionV2]
    ) {
        self.startInContent = startInContent
        self.indexOfFirstSegment = indexOfFirstSegment
        self.offsetInFirstSegment = offsetInFirstSegment
        self.lengthOfRange = lengthOfRange
        self.segments = segments
    }

    // MARK: - API

    /// The content range described (`lengthOfRange` 0: through the end of the last listed segment).
    public var contentRange: Range<UInt64> {
        let listed = segments.reduce(UInt64(0)) { $0 &+ UInt64($1.segmentLength) }
        let start = startInContent &+ UInt64(offsetInFirstSegment)
        let end = lengthOfRange == 0 ? startInContent &+ listed : start &+ lengthOfRange
        return start..<Swift.max(start, end)
    }

    /// The byte-exact serialization: header, then one chunk of type 0 with every segment
    /// (no chunk at all when there are no segments).
    /// - Returns: The MS-PCCRC V2 structure.
    public func serialize() -> [UInt8] {
        let perChunk = Int(UInt32.max) / SegmentDescriptionV2.serializedSize
        let chunkCount = (segments.count + perChunk - 1) / perChunk
        var writer = ByteWriter(
            capacity: Self.headerSize + chunkCount * Self.chunkHeaderSize
                + segments.count * SegmentDescriptionV2.serializedSize)
        writer.u8(0x00)
        writer.u8(0x02)
        writer.u8(Self.hashAlgorithmSHA512Truncated)
        writer.u64BE(startInContent)
        writer.u64BE(indexOfFirstSegment)
        writer.u32BE(offsetInFirstSegment)
        writer.u64BE(lengthOfRange)
        var start = 0
        while start < segments.count {
            let end = Swift.min(start + perChunk, segments.count)
            writer.u8(0x00)
            writer.u32BE(UInt32((end - start) * SegmentDescriptionV2.serializedSize))
            for segment in segments[start..<end] {
                writer.u32BE(segment.segmentLength)
                writer.append(segment.hashOfData)
                writer.append(segment.segmentSecret)
            }
            start = end
        }
        return writer.bytes
    }

    /// Parses version 2.0 content information strictly.
    /// - Parameter bytes: The whole structure, nothing before or after it.
    /// - Returns: The parsed fields (segments of all chunks, in order).
    /// - Throws: `.versionUnsupported` for a version other than 2.0 or a `bHashAlgo` other than 4;
    ///   `.cannotParse` for truncated data, a chunk type other than 0, a chunk length that is 0,
    ///   not a multiple of 68 or longer than the data, a `cbSegment` outside 1...131072, or
    ///   range fields that do not fit the listed segments.
    public static func parse(_ bytes: [UInt8]) throws(PCCRCError) -> ContentInformationV2 {
        var reader = ByteReader(bytes)
        let minor = try reader.u8("bMinorVersion")
        let major = try reader.u8("bMajorVersion")
        guard minor == 0x00, major == 0x02 else { throw .versionUnsupported }
        guard try reader.u8("bHashAlgo") == hashAlgorithmSHA512Truncated else { throw .versionUnsupported }
        var info = ContentInformationV2(
            startInContent: try reader.u64BE("ullStartInContent"),
            indexOfFirstSegment: try reader.u64BE("ullIndexOfFirstSegment"),
            offsetInFirstSegment: try reader.u32BE("dwOffsetInFirstSegment"),
            lengthOfRange: try reader.u64BE("ullLengthOfRange"),
            segments: [])
        while reader.remaining > 0 {
            try reader.need(chunkHeaderSize, "ChunkDescription header")
            let type = try reader.u8("bChunkType")
            guard type == 0x00 else { throw .cannotParse("bChunkType \(type), expected 0") }
            let length = Int(try reader.u32BE("dwChunkDataLength"))
            guard length > 0, length % SegmentDescriptionV2.serializedSize == 0 else {
                throw .cannotParse("dwChunkDataLength \(length) is not a positive multiple of 68")
            }
            try reader.need(length, "chunk data")
            info.segments.reserveCapacity(info.segments.count + length / SegmentDescriptionV2.serializedSize)
            for _ in 0..<(length / SegmentDescriptionV2.serializedSize) {
                let segmentLength = try reader.u32BE("cbSegment")
                guard segmentLength >= 1, segmentLength <= maximumSegmentLength else {
                    throw .cannotParse("cbSegment \(segmentLength) outside 1...131072")
                }
                info.segments.append(
                    SegmentDescriptionV2(
                        segmentLength: segmentLength,
                        hashOfData: try reader.bytes(32, "SegmentHashOfData"),
                        segmentSecret: try reader.bytes(32, "SegmentSecret")))
            }
        }
        try info.validateRange()
        return info
    }

    // MARK: - Private

    private func validateRange() throws(PCCRCError) {
        guard let first = segments.first, let last = segments.last else {
            guard offsetInFirstSegment == 0, lengthOfRange == 0 else {
                throw .cannotParse("range fields set without segments")
            }
            return
        }
        // Bounded by the input size (at most 2^32 / 68 segments per chunk), so no overflow.
        let listed = segments.reduce(UInt64(0)) { $0 + UInt64($1.segmentLength) }
        guard startInContent <= UInt64.max - listed else {
            throw .cannotParse("ullStartInContent \(startInContent) overflows with the listed segments")
        }
        guard offsetInFirstSegment < first.segmentLength else {
            throw .cannotParse("dwOffsetInFirstSegment \(offsetInFirstSegment) outside the first segment")
        }
        guard lengthOfRange != 0 else { return }
        let available = listed - UInt64(offsetInFirstSegment)
        let beforeLast = listed - UInt64(last.segmentLength)
        guard lengthOfRange <= available, UInt64(offsetInFirstSegment) + lengthOfRange > beforeLast else {
            throw .cannotParse("ullLengthOfRange \(lengthOfRange) does not end in the last listed segment")
        }
    }
}
