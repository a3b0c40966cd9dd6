import Testing

@testable import PCCRC

@Suite("V2 content-defined chunker")
struct ChunkerTests {
    typealias Chunker = ContentDefinedChunker

    static func boundaries(_ lengths: [Int]) -> [Int] {
        var offset = 0
        return lengths.map { length in
            offset += length
            return offset
        }
    }

    @Test("Parameters and the gear table are fixed")
    func parameters() {
        #expect(Chunker.minimumSegmentLength == 32_768)
        #expect(Chunker.normalSegmentLength == 65_536)
        #expect(Chunker.maximumSegmentLength == 131_072)
        #expect(Chunker.gearTable.count == 256)
        #expect(Set(Chunker.gearTable).count == 256)
        // First SplitMix64 outputs for the seed "PEERDIST": pins the table against accidental change.
        #expect(Chunker.gearTable[0] == Self.splitMix(Chunker.gearSeed, 1))
        #expect(Chunker.gearTable[255] == Self.splitMix(Chunker.gearSeed, 256))
    }

    static func splitMix(_ seed: UInt64, _ n: Int) -> UInt64 {
        var state = seed
        var z: UInt64 = 0
        for _ in 0..<n {
            state &+= 0x9E37_79B9_7F4A_7C15
            z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
        }
        return z
    }

    @Test("Segment lengths: 32 KiB...128 KiB except the last; sum is the content", arguments: [UInt64(1), 2, 3])
    func lengthBounds(seed: UInt64) {
        let content = TestSupport.randomBytes(count: 8 << 20, seed: seed)
        let lengths = Chunker.segmentLengths(of: content)
        #expect(lengths.reduce(0, +) == content.count)
        #expect(lengths.allSatisfy { $0 >= 1 && $0 <= 131_072 })
        #expect(lengths.dropLast().allSatisfy { $0 >= 32_768 })
        let mean = content.count / lengths.count
        #expect(mean > 48_000 && mean < 96_000, "mean \(mean)")
        #expect(Chunker.segmentLengths(of: content) == lengths)  // deterministic
    }

    @Test("Small and degenerate contents")
    func degenerate() {
        #expect(Chunker.segmentLengths(of: []) == [])
        #expect(Chunker.segmentLengths(of: [7]) == [1])
        #expect(Chunker.segmentLengths(of: [UInt8](repeating: 1, count: 32_767)) == [32_767])
        let zeros = Chunker.segmentLengths(of: [UInt8](repeating: 0, count: 1 << 20))
        #expect(zeros.allSatisfy { $0 >= 32_768 && $0 <= 131_072 })
        #expect(zeros.reduce(0, +) == 1 << 20)
        // 256-periodic content (the §5.6 c vector's pattern) never meets the boundary condition:
        // only forced cuts at 131,072, and 128,000 bytes stay one segment.
        let periodic = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0) }
        #expect(Chunker.segmentLengths(of: periodic) == [Int](repeating: 131_072, count: 8))
        #expect(Chunker.segmentLengths(of: Array(periodic.prefix(128_000))) == [128_000])
    }

    @Test("Byte-by-byte feeding finds the same boundaries")
    func streaming() {
        let content = TestSupport.randomBytes(count: 700_000, seed: 11)
        var chunker = Chunker()
        var lengths = [Int]()
        var current = 0
        content.withUnsafeBytes { raw in
            for i in 0..<raw.count {
                current += 1
                if chunker.nextBoundary(in: UnsafeRawBufferPointer(rebasing: raw[i..<(i + 1)])) != nil {
                    #expect(chunker.currentSegmentLength == 0)
                    lengths.append(current)
                    current = 0
                }
            }
        }
        if current > 0 { lengths.append(current) }
        #expect(lengths == Chunker.segmentLengths(of: content))
    }

    @Test("Content-defined: inserting or deleting bytes at the front moves only nearby boundaries")
    func resynchronises() {
        let content = TestSupport.randomBytes(count: 4 << 20, seed: 21)
        let original = Set(Self.boundaries(Chunker.segmentLengths(of: content)))
        for (edit, shift) in [(TestSupport.randomBytes(count: 100, seed: 3) + content, 100), (Array(content.dropFirst(777)), -777)] {
            let shifted = Self.boundaries(Chunker.segmentLengths(of: edit)).map { $0 - shift }
            let common = shifted.filter { original.contains($0) }
            #expect(common.count >= shifted.count - 3, "\(common.count) of \(shifted.count) boundaries kept")
            // Everything after the first 512 KiB is identical.
            #expect(shifted.filter { $0 > 1 << 19 } == original.sorted().filter { $0 > 1 << 19 })
        }
    }

    @Test("Identical data in different contents yields identical segments (same HoD)")
    func sharedSegments() {
        let shared = TestSupport.randomBytes(count: 1 << 20, seed: 8)
        let a = ContentHashes.hashing(TestSupport.randomBytes(count: 50_000, seed: 9) + shared, version: .v2)
        let b = ContentHashes.hashing(TestSupport.randomBytes(count: 90_001, seed: 10) + shared, version: .v2)
        let common = Set(a.segments.map(\.hashOfData)).intersection(b.segments.map(\.hashOfData))
        #expect(common.count >= a.segments.count - 3)
    }
}
