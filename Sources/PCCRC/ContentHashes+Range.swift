/// The segments of a content that a requested range touches.
struct SegmentSelection {
    /// Indices into `ContentHashes.segments`.
    let indices: Range<Int>
    /// The requested range in content offsets (the whole content for `(0, 0)`).
    let range: Range<UInt64>
    /// `true` for the `(0, 0)` request.
    let isWholeContent: Bool
}

extension ContentHashes {
    /// Selects the segments intersecting `[offset, offset + length)`; `(0, 0)` selects everything.
    /// - Throws: `.rangeOutOfBounds` when the range is empty (with a non-zero offset) or leaves
    ///   the content.
    func selectSegments(offset: UInt64, length: UInt64) throws(PCCRCError) -> SegmentSelection {
        if offset == 0, length == 0 {
            return SegmentSelection(indices: segments.indices, range: 0..<contentLength, isWholeContent: true)
        }
        guard length > 0, offset < contentLength, length <= contentLength - offset else {
            throw .rangeOutOfBounds
        }
        let end = offset + length
        let first = lastSegment(startingAtOrBefore: offset)
        let last = lastSegment(startingAtOrBefore: end - 1)
        guard first >= 0, last >= first else {
            preconditionFailure("ContentHashes segments do not cover the content")
        }
        return SegmentSelection(indices: first..<(last + 1), range: offset..<end, isWholeContent: false)
    }

    /// Binary search: index of the last segment whose offset is `<= position` (-1 if none).
    private func lastSegment(startingAtOrBefore position: UInt64) -> Int {
        var low = 0
        var high = segments.count
        while low < high {
            let mid = (low + high) / 2
            if segments[mid].offset <= position {
                low = mid + 1
            } else {
                high = mid
            }
        }
        return low - 1
    }
}
