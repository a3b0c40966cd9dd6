/// Encoding and parsing of MS-PCCRC content information of either version.
public enum ContentInformation {
    /// Serialized content information (byte-exact MS-PCCRC) for the range [offset, offset+length);
    /// (0, 0) means the whole content. Throws .rangeOutOfBounds when the range leaves the content.
    ///
    /// Choices (see also `docs/PCCRC-V2-CHUNKER.md`):
    /// - V1 whole content: `dwOffsetInFirstSegment` 0 and `dwReadBytesInLastSegment` 0, as Windows
    ///   IIS emits (MS-PCCRC §3.4 shows the last segment's length instead; the parser accepts both).
    /// - V1 range: the segments intersecting the range; each lists block hashes from block 0 through
    ///   the last block intersecting the range; `dwReadBytesInLastSegment` is 0 when the range ends
    ///   at the last listed segment's end, otherwise the range length (one segment) or the range's
    ///   bytes in the last segment (several segments).
    /// - V2 whole content: start 0, index 0, offset 0, `ullLengthOfRange` 0 (as Windows); range:
    ///   start and index of the first intersecting segment, offset in it, and the range length.
    /// - Empty content (length 0) with `(0, 0)`: a valid structure with no segments (V1: the 18-byte
    ///   header with `cSegments` 0; V2: the 31-byte header and no chunk). Any other range of an
    ///   empty content is out of bounds.
    /// - A non-zero offset with length 0 is out of bounds (an empty range touches no segment).
    ///
    /// - Parameters:
    ///   - hashes: The content's digests from `ContentHasher`.
    ///   - secret: The server secret (gives `Ks` and each segment's `Kp`).
    ///   - offset: Range start.
    ///   - length: Range length; `(0, 0)` is the whole content.
    /// - Returns: The serialized structure of `hashes.version`.
    /// - Throws: `PCCRCError.rangeOutOfBounds`.
    public static func encode(
        _ hashes: ContentHashes, secret: ServerSecret, offset: UInt64, length: UInt64
    ) throws(PCCRCError) -> [UInt8] {
        let selection = try hashes.selectSegments(offset: offset, length: length)
        switch hashes.version {
        case .v1: return makeV1(hashes, secret: secret, selection: selection).serialize()
        case .v2: return makeV2(hashes, secret: secret, selection: selection).serialize()
        }
    }

    /// Parses either version (dispatch on the LE WORD at offset 0: 0x0100 v1, 0x0200 v2).
    /// - Parameter bytes: The whole structure.
    /// - Returns: The parsed structure.
    /// - Throws: `.versionUnsupported` for any other version word or an unknown hash algorithm,
    ///   `.cannotParse` for malformed data.
    public static func parse(_ bytes: [UInt8]) throws(PCCRCError) -> ParsedContentInformation {
        guard bytes.count >= 2 else {
            throw .cannotParse("truncated: \(bytes.count) bytes, the version needs 2")
        }
        switch UInt16(bytes[0]) | UInt16(bytes[1]) << 8 {
        case 0x0100: return .v1(try ContentInformationV1.parse(bytes))
        case 0x0200: return .v2(try ContentInformationV2.parse(bytes))
        default: throw .versionUnsupported
        }
    }

    // MARK: - Building

    /// The V1 structure for a selection (see `encode` for the field rules).
    static func makeV1(_ hashes: ContentHashes, secret: ServerSecret, selection: SegmentSelection) -> ContentInformationV1 {
        let algorithm = hashes.algorithm
        let ks = secret.ksV1(algorithm)
        let blockSize = UInt64(ContentInformationV1.blockSize)
        let range = selection.range
        var described = [SegmentDescriptionV1]()
        described.reserveCapacity(selection.indices.count)
        for index in selection.indices {
            let segment = hashes.segments[index]
            var blockHashes = segment.blockHashes
            if index == selection.indices.last, !selection.isWholeContent {
                let endInSegment = Swift.min(range.upperBound - segment.offset, UInt64(segment.length))
                let count = Int((endInSegment + blockSize - 1) / blockSize)
                blockHashes = Array(blockHashes.prefix(count))
            }
            described.append(
                SegmentDescriptionV1(
                    offsetInContent: segment.offset, segmentLength: segment.length,
                    blockSize: ContentInformationV1.blockSize, hashOfData: segment.hashOfData,
                    segmentSecret: SegmentKeys.segmentSecret(
                        version: .v1, algorithm: algorithm, ks: ks, hashOfData: segment.hashOfData),
                    blockHashes: blockHashes))
        }
        var offsetInFirst: UInt32 = 0
        var readBytes: UInt32 = 0
        if !selection.isWholeContent, let first = described.first, let last = described.last {
            offsetInFirst = UInt32(range.lowerBound - first.offsetInContent)
            if range.upperBound < last.offsetInContent + UInt64(last.segmentLength) {
                readBytes = UInt32(
                    described.count == 1
                        ? range.upperBound - range.lowerBound : range.upperBound - last.offsetInContent)
            }
        }
        return ContentInformationV1(
            hashAlgorithm: algorithm, offsetInFirstSegment: offsetInFirst, readBytesInLastSegment: readBytes,
            segments: described)
    }

    /// The V2 structure for a selection (see `encode` for the field rules).
    static func makeV2(_ hashes: ContentHashes, secret: ServerSecret, selection: SegmentSelection) -> ContentInformationV2 {
        let ks = secret.ksV2
        let described = selection.indices.map { index in
            let segment = hashes.segments[index]
            return SegmentDescriptionV2(
                segmentLength: segment.length, hashOfData: segment.hashOfData,
                segmentSecret: SegmentKeys.segmentSecret(
                    version: .v2, algorithm: .sha256, ks: ks, hashOfData: segment.hashOfData))
        }
        guard !selection.isWholeContent, let firstIndex = selection.indices.first else {
            return ContentInformationV2(
                startInContent: 0, indexOfFirstSegment: 0, offsetInFirstSegment: 0, lengthOfRange: 0,
                segments: described)
        }
        let first = hashes.segments[firstIndex]
        return ContentInformationV2(
            startInContent: first.offset, indexOfFirstSegment: UInt64(firstIndex),
            offsetInFirstSegment: UInt32(selection.range.lowerBound - first.offset),
            lengthOfRange: selection.range.upperBound - selection.range.lowerBound, segments: described)
    }
}
