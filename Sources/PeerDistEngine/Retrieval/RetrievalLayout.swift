import BlockCache
import PCCRC

/// What a retrieval's completed content information says about the content: the cache entries
/// (a V1 block or a V2 segment each) with their place in the content, key and digest, the range
/// reads are confined to and the end AddData is checked against. Immutable; built once, off the
/// engine lock, when CompleteContentInformation parses. `package` for its fuzz target (FuzzPCCRC).
package struct RetrievalLayout: Sendable {
    /// One cache entry of the content.
    package struct Entry: Sendable {
        /// Where its bytes are in the content.
        package let start: UInt64
        package let length: Int
        package let key: BlockKey
        package let digest: BlockDigest

        package var end: UInt64 { start + UInt64(length) }
    }

    /// 1 or 2.
    package let version: Int
    /// The entries in content order, contiguous.
    package let entries: [Entry]
    /// The range reads may touch (the content information's range); misses are clipped to it.
    package let readRange: Range<UInt64>
    /// The end of the content as far as the content information describes it (the end of its last
    /// segment): AddData at or past it ends with 4061.
    package let contentEnd: UInt64

    /// About what the layout takes in memory: each entry and its digest's bytes.
    package var memoryBytes: Int {
        entries.count * (MemoryLayout<Entry>.stride + 32 + (entries.first?.digest.bytes.count ?? 0))
    }

    /// Builds the layout, or says why the structure cannot be used (4051): also when a V1 segment
    /// lists all its block hashes and they do not hash to its HoD.
    package static func make(_ parsed: ParsedContentInformation) -> Result<RetrievalLayout, EngineError> {
        var entries = [Entry]()
        let malformed = { (why: String) in
            Result<RetrievalLayout, EngineError>.failure(EngineError(.cannotParseContentInfo, why))
        }
        switch parsed {
        case .v1(let info):
            let blockSize = UInt64(ContentInformationV1.blockSize)
            var expectedStart: UInt64? = nil
            for segment in info.segments {
                guard segment.blockSize == ContentInformationV1.blockSize, segment.segmentLength > 0,
                    let segmentID = SegmentID(
                        SegmentKeys.segmentID(
                            version: .v1, algorithm: info.hashAlgorithm, kp: segment.segmentSecret,
                            hashOfData: segment.hashOfData)),
                    segment.blockHashes.count <= segment.fullBlockCount,
                    segment.offsetInContent.addingReportingOverflow(UInt64(segment.segmentLength)).overflow == false
                else { return malformed("a segment description is inconsistent") }
                if let expectedStart, expectedStart != segment.offsetInContent {
                    return malformed("the segments are not contiguous")
                }
                // A segment whose every block hash is listed must have them hash to its HoD: else
                // its HoD (and segment ID) would name blocks that are not the segment's.
                if segment.blockHashes.count == segment.fullBlockCount,
                    SegmentKeys.v1HashOfData(algorithm: info.hashAlgorithm, blockHashes: segment.blockHashes)
                        != segment.hashOfData
                {
                    return malformed("a segment's block hashes do not hash to its HoD")
                }
                for (index, hash) in segment.blockHashes.enumerated() {
                    let offset = UInt64(index) * blockSize
                    let length = Int(min(blockSize, UInt64(segment.segmentLength) - offset))
                    guard let digest = BlockDigest(.v1(info.hashAlgorithm), hash) else {
                        return malformed("a block hash has the wrong length")
                    }
                    entries.append(
                        Entry(
                            start: segment.offsetInContent + offset, length: length,
                            key: BlockKey(segment: segmentID, index: UInt32(index)), digest: digest))
                }
                expectedStart = segment.offsetInContent + UInt64(segment.segmentLength)
            }
            let end = info.segments.last.map { $0.offsetInContent + UInt64($0.segmentLength) } ?? 0
            return .success(finish(version: 1, entries: entries, range: info.contentRange, end: end))
        case .v2(let info):
            var position = info.startInContent
            for segment in info.segments {
                guard segment.segmentLength > 0, segment.segmentLength <= ContentInformationV2.maximumSegmentLength,
                    let segmentID = SegmentID(
                        SegmentKeys.segmentID(
                            version: .v2, algorithm: .sha256, kp: segment.segmentSecret, hashOfData: segment.hashOfData)),
                    let digest = BlockDigest(.v2, segment.hashOfData),
                    position.addingReportingOverflow(UInt64(segment.segmentLength)).overflow == false
                else { return malformed("a segment description is inconsistent") }
                entries.append(
                    Entry(
                        start: position, length: Int(segment.segmentLength),
                        key: BlockKey(segment: segmentID, index: 0), digest: digest))
                position += UInt64(segment.segmentLength)
            }
            return .success(finish(version: 2, entries: entries, range: info.contentRange, end: position))
        }
    }

    private static func finish(version: Int, entries: [Entry], range: Range<UInt64>, end: UInt64) -> RetrievalLayout {
        // Reads never reach past what the entries cover (a ranged V1 structure lists the blocks
        // through the range's last one only).
        let covered = entries.last?.end ?? 0
        let upper = min(range.upperBound, covered)
        let lower = min(range.lowerBound, upper)
        return RetrievalLayout(version: version, entries: entries, readRange: lower..<upper, contentEnd: end)
    }

    /// The index of the first entry that ends after `offset` (`entries.count` when none does).
    package func firstEntry(endingAfter offset: UInt64) -> Int {
        var low = 0
        var high = entries.count
        while low < high {
            let mid = (low + high) / 2
            if entries[mid].end <= offset { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// Where bytes gathered up to `offset` may be cut without splitting an entry: the end of the last
    /// entry that ends at or before it when `offset` falls inside an entry, else `offset` itself.
    package func boundary(atOrBefore offset: UInt64) -> UInt64 {
        let index = firstEntry(endingAfter: offset)
        guard index < entries.count, entries[index].start < offset else { return offset }
        return entries[index].start
    }

    /// The index of the entry holding `offset`, if any.
    package func entryIndex(containing offset: UInt64) -> Int? {
        let index = firstEntry(endingAfter: offset)
        guard index < entries.count, entries[index].start <= offset else { return nil }
        return index
    }
}
