/// The version 2.0 content-defined chunker: decides where segments end.
///
/// MS-PCCRC only requires V2 segments of 1 to 131,072 bytes; Windows' own chunker (the one of
/// Windows Server Data Deduplication) is unpublished, so this one is ours and V2 output is not
/// byte-identical to Windows'. Full rationale: `docs/PCCRC-V2-CHUNKER.md`.
///
/// Algorithm (a FastCDC-style "gear" rolling hash with normalized chunking):
/// - `gear` is a fixed table of 256 `UInt64` produced by SplitMix64 from the seed
///   `0x5045_4552_4449_5354` ("PEERDIST"); see `gearTable`.
/// - Per byte `b`: `h = (h << 1) &+ gear[b]`. After 64 bytes, `h` depends only on the last
///   64 bytes, so a boundary is a pure function of a 64-byte window and of the distance from the
///   previous boundary.
/// - Let `L` be the segment length including the current byte. A segment ends after that byte when
///   - `L == 131072` (`maximumSegmentLength`), or
///   - `32768 <= L < 65536` and the top 16 bits of `h` are zero (`h < 1 << 48`), or
///   - `65536 <= L < 131072` and the top 14 bits of `h` are zero (`h < 1 << 50`).
/// - `h` restarts at 0 at each boundary; the first `32768 - 64` bytes of a segment are skipped
///   (they cannot end it), then 63 bytes warm the window up, so the hash at `L = 32768` already
///   covers a full 64-byte window.
/// - The content's end always ends the last segment (which may be shorter than the minimum).
///
/// The state is two integers, so the chunker streams: feed any slicing of the content and the
/// boundaries are identical.
public struct ContentDefinedChunker: Sendable {
    // MARK: - Parameters

    /// No segment ends before this length (except the content's last one).
    public static let minimumSegmentLength = 32 * 1024
    /// From this length on, the looser boundary condition applies (normalized chunking).
    public static let normalSegmentLength = 64 * 1024
    /// A segment is always cut at this length (131,072, the MS-PCCRC V2 maximum).
    public static let maximumSegmentLength = 128 * 1024
    /// Bytes that determine `h`'s top bits.
    public static let windowSize = 64
    /// Boundary test for `minimumSegmentLength <= L < normalSegmentLength`: 16 top bits zero.
    public static let strictThreshold: UInt64 = 1 << 48
    /// Boundary test for `normalSegmentLength <= L < maximumSegmentLength`: 14 top bits zero.
    public static let looseThreshold: UInt64 = 1 << 50
    /// Seed of the SplitMix64 sequence that fills `gearTable` ("PEERDIST" in ASCII).
    public static let gearSeed: UInt64 = 0x5045_4552_4449_5354

    /// The 256-entry gear table: the first 256 outputs of SplitMix64 seeded with `gearSeed`.
    public static let gearTable: [UInt64] = {
        var state = gearSeed
        var table = [UInt64]()
        table.reserveCapacity(256)
        for _ in 0..<256 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            table.append(z ^ (z >> 31))
        }
        return table
    }()

    // MARK: - State

    /// Bytes of the current (unfinished) segment seen so far.
    public private(set) var currentSegmentLength: Int = 0
    private var hash: UInt64 = 0

    // MARK: - Init

    /// Creates a chunker positioned at the start of a content.
    public init() {}

    // MARK: - API

    /// Scans `bytes`, which continue the content, for the end of the current segment.
    ///
    /// - Parameter bytes: The next bytes of the content (any length, possibly empty).
    /// - Returns: `n` when the current segment ends after `bytes[n - 1]` (`1 <= n <= bytes.count`);
    ///   the chunker has then started the next segment and the caller continues with
    ///   `bytes[n...]`. `nil` when every byte belongs to the current segment.
    public mutating func nextBoundary(in bytes: UnsafeRawBufferPointer) -> Int? {
        Self.gearTable.withUnsafeBufferPointer { gear in
            scan(bytes, gear: gear)
        }
    }

    /// The segment lengths of a whole in-memory content.
    /// - Parameter bytes: The content.
    /// - Returns: Lengths in order; their sum is `bytes.count`; empty for empty content.
    public static func segmentLengths(of bytes: [UInt8]) -> [Int] {
        var chunker = ContentDefinedChunker()
        var lengths = [Int]()
        bytes.withUnsafeBytes { raw in
            var start = 0
            while start < raw.count {
                let rest = UnsafeRawBufferPointer(rebasing: raw[start...])
                if let cut = chunker.nextBoundary(in: rest) {
                    lengths.append(cut)
                    start += cut
                } else {
                    lengths.append(rest.count)
                    start = raw.count
                }
            }
        }
        return lengths
    }

    // MARK: - Private

    private mutating func scan(_ bytes: UnsafeRawBufferPointer, gear: UnsafeBufferPointer<UInt64>) -> Int? {
        let count = bytes.count
        var index = 0
        var length = currentSegmentLength
        var h = hash
        defer {
            currentSegmentLength = length
            hash = h
        }
        // Skip: bytes that can neither end the segment nor reach the hash window.
        let warmStart = Self.minimumSegmentLength - Self.windowSize
        if length < warmStart {
            let step = Swift.min(warmStart - length, count)
            index = step
            length += step
        }
        // Warm-up: hash without testing until L = minimum - 1.
        if length < Self.minimumSegmentLength - 1, index < count {
            let step = Swift.min(Self.minimumSegmentLength - 1 - length, count - index)
            let end = index + step
            while index < end {
                h = (h &<< 1) &+ gear[Int(bytes[index])]
                index &+= 1
            }
            length += step
        }
        // Strict region (L < normal), then loose region (L < maximum).
        if Self.testRegion(bytes, gear, &index, &length, &h, limit: Self.normalSegmentLength - 1, threshold: Self.strictThreshold)
            || Self.testRegion(bytes, gear, &index, &length, &h, limit: Self.maximumSegmentLength - 1, threshold: Self.looseThreshold)
        {
            return index
        }
        // Forced cut at the maximum length.
        if length == Self.maximumSegmentLength - 1, index < count {
            length = 0
            h = 0
            return index + 1
        }
        return nil
    }

    /// Hashes bytes while the segment length stays below `limit`, testing each position.
    /// - Returns: `true` when a boundary was found (then `index` is just past it and the state is reset).
    @inline(__always)
    private static func testRegion(
        _ bytes: UnsafeRawBufferPointer, _ gear: UnsafeBufferPointer<UInt64>,
        _ index: inout Int, _ length: inout Int, _ h: inout UInt64,
        limit: Int, threshold: UInt64
    ) -> Bool {
        guard length < limit, index < bytes.count else { return false }
        let start = index
        let end = index + Swift.min(limit - length, bytes.count - index)
        var i = index
        var hash = h
        while i < end {
            hash = (hash &<< 1) &+ gear[Int(bytes[i])]
            i &+= 1
            if hash < threshold {
                index = i
                length = 0
                h = 0
                return true
            }
        }
        index = i
        length += i - start
        h = hash
        return false
    }
}
