import Testing

@testable import PCCRC

@Suite("Streaming: any slicing gives identical digests")
struct StreamingTests {
    static func hash(_ content: [UInt8], version: PCCRCVersion, algorithm: V1HashAlgorithm = .sha256, slices: [Int]) -> ContentHashes {
        var hasher = ContentHasher(version: version, algorithm: algorithm)
        var start = 0
        var index = 0
        while start < content.count {
            let size = slices.isEmpty ? content.count : max(0, slices[index % slices.count])
            index += 1
            let end = min(content.count, start + size)
            content.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[start..<end])) }
            start = end
        }
        #expect(hasher.bytesHashed == UInt64(content.count))
        return hasher.finalize()
    }

    static let randomSlices: [Int] = TestSupport.randomBytes(count: 4096, seed: 7).enumerated().map { i, b in
        i % 7 == 0 ? 0 : (i % 5 == 0 ? Int(b) * 1_000 : Int(b) + 1)
    }

    @Test("Whole vs 1-byte vs random vs 64 KiB slices (V1 and V2, ~600 KB)", arguments: [PCCRCVersion.v1, .v2])
    func smallContent(version: PCCRCVersion) {
        let content = TestSupport.randomBytes(count: 600_001, seed: 42)
        let whole = Self.hash(content, version: version, slices: [])
        #expect(whole.contentLength == 600_001)
        #expect(whole.segments.reduce(0) { $0 + UInt64($1.length) } == 600_001)
        if version == .v2 {
            #expect(whole.segments.count > 3)
        } else {
            #expect(whole.segments.count == 1)
            #expect(whole.segments[0].blockHashes.count == 10)
        }
        #expect(Self.hash(content, version: version, slices: [1]) == whole)
        #expect(Self.hash(content, version: version, slices: Self.randomSlices) == whole)
        #expect(Self.hash(content, version: version, slices: [65_536]) == whole)
        #expect(Self.hash(content, version: version, slices: [65_535, 65_537, 3]) == whole)
    }

    @Test("Across a V1 segment boundary (32 MiB + 12,345 bytes), SHA-256/384/512", arguments: [V1HashAlgorithm.sha256, .sha384, .sha512])
    func largeContent(algorithm: V1HashAlgorithm) {
        let content = TestSupport.randomBytes(count: 33_554_432 + 12_345, seed: 99)
        let whole = Self.hash(content, version: .v1, algorithm: algorithm, slices: [])
        #expect(whole.algorithm == algorithm)
        #expect(whole.segments.map(\.length) == [33_554_432, 12_345])
        #expect(whole.segments.map(\.offset) == [0, 33_554_432])
        #expect(whole.segments.map(\.blockHashes.count) == [512, 1])
        #expect(whole.segments.allSatisfy { $0.hashOfData.count == algorithm.digestSize })
        #expect(Self.hash(content, version: .v1, algorithm: algorithm, slices: [65_536]) == whole)
        #expect(Self.hash(content, version: .v1, algorithm: algorithm, slices: Self.randomSlices.map { $0 * 37 }) == whole)
    }

    @Test("V2 across many segments: 64 KiB and random slices")
    func largeV2() {
        let content = TestSupport.randomBytes(count: 5_000_000, seed: 5)
        let whole = Self.hash(content, version: .v2, slices: [])
        #expect(Self.hash(content, version: .v2, slices: [65_536]) == whole)
        #expect(Self.hash(content, version: .v2, slices: Self.randomSlices.map { $0 * 13 }) == whole)
        #expect(whole.segments.map { Int($0.length) } == ContentDefinedChunker.segmentLengths(of: content))
    }

    @Test("Content that is an exact multiple of the block and segment sizes")
    func exactMultiples() {
        let content = [UInt8](repeating: 0xAB, count: 3 * 65_536)
        let hashes = Self.hash(content, version: .v1, slices: [65_536])
        #expect(hashes.segments.map(\.blockHashes.count) == [3])
        #expect(hashes.segments[0].blockHashes[0] == hashes.segments[0].blockHashes[2])
    }

    @Test("finalize twice returns the same value; empty updates are ignored")
    func finalizeTwice() {
        var hasher = ContentHasher(version: .v2)
        hasher.update([])
        hasher.update([1, 2, 3])
        let first = hasher.finalize()
        #expect(hasher.finalize() == first)
        #expect(first.segments.map(\.length) == [3])
        #expect(first.algorithm == .sha256)
        #expect(ContentHasher(version: .v2, algorithm: .sha512).algorithm == .sha256)
    }
}
