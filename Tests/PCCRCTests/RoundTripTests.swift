import Testing

@testable import PCCRC

@Suite("parse(encode(x)) round trips")
struct RoundTripTests {
    let secret = ServerSecret(keyBytes: TestSupport.randomBytes(count: 32, seed: 1))

    static let content = TestSupport.randomBytes(count: 1_000_003, seed: 77)

    static func ranges(length: UInt64, seed: UInt64) -> [(UInt64, UInt64)] {
        var result: [(UInt64, UInt64)] = [(0, 0), (0, 1), (0, length), (length - 1, 1), (65_535, 2), (65_536, 65_536)]
        let random = TestSupport.randomBytes(count: 8 * 80, seed: seed)
        for i in 0..<40 {
            let a = TestSupport.le(random, 16 * i, 8) % length
            let b = TestSupport.le(random, 16 * i + 8, 8) % (length - a) + 1
            result.append((a, b))
        }
        return result
    }

    static func check(_ hashes: ContentHashes, secret: ServerSecret, offset: UInt64, length: UInt64) throws {
        let bytes = try ContentInformation.encode(hashes, secret: secret, offset: offset, length: length)
        let parsed = try ContentInformation.parse(bytes)
        #expect(parsed.version == hashes.version)
        #expect(parsed.serialize() == bytes)
        let expected = (offset, length) == (0, 0) ? 0..<hashes.contentLength : offset..<(offset + length)
        #expect(parsed.contentRange == expected, "range \(offset)+\(length)")
        let ks = hashes.version == .v1 ? secret.ksV1(hashes.algorithm) : secret.ksV2
        switch parsed {
        case .v1(let info):
            let first = hashes.segments.firstIndex { $0.offset == info.segments.first?.offsetInContent } ?? -1
            for (i, segment) in info.segments.enumerated() {
                let source = hashes.segments[first + i]
                #expect(segment.hashOfData == source.hashOfData)
                #expect(segment.segmentSecret == SegmentKeys.segmentSecret(version: .v1, algorithm: hashes.algorithm, ks: ks, hashOfData: source.hashOfData))
                #expect(segment.blockHashes == Array(source.blockHashes.prefix(segment.blockHashes.count)))
            }
        case .v2(let info):
            let first = Int(info.indexOfFirstSegment)
            #expect(info.startInContent == hashes.segments[first].offset)
            for (i, segment) in info.segments.enumerated() {
                #expect(segment.hashOfData == hashes.segments[first + i].hashOfData)
                #expect(segment.segmentLength == hashes.segments[first + i].length)
            }
        }
    }

    @Test("V1 (SHA-256/384/512) ranges over 1 MB", arguments: [V1HashAlgorithm.sha256, .sha384, .sha512])
    func v1(algorithm: V1HashAlgorithm) throws {
        let hashes = ContentHashes.hashing(Self.content, version: .v1, algorithm: algorithm)
        for (offset, length) in Self.ranges(length: hashes.contentLength, seed: 1) {
            try Self.check(hashes, secret: secret, offset: offset, length: length)
        }
        let whole = try ContentInformation.encode(hashes, secret: secret, offset: 0, length: 0)
        #expect(TestSupport.le(whole, 2, 4) == UInt64(algorithm.rawValue))
        #expect(whole.count == 18 + (16 + 2 * algorithm.digestSize) + 4 + 16 * algorithm.digestSize)
    }

    @Test("V2 ranges over 1 MB")
    func v2() throws {
        let hashes = ContentHashes.hashing(Self.content, version: .v2)
        for (offset, length) in Self.ranges(length: hashes.contentLength, seed: 2) {
            try Self.check(hashes, secret: secret, offset: offset, length: length)
        }
    }

    @Test("V1 ranges over a synthetic 10-segment content (digests irrelevant to structure)")
    func v1Synthetic() throws {
        let size: UInt64 = 33_554_432
        let lastLength: UInt64 = 1_234_567
        let segments = (0..<10).map { i -> SegmentHashes in
            let length = i == 9 ? lastLength : size
            let blocks = Int((length + 65_535) / 65_536)
            return SegmentHashes(
                offset: UInt64(i) * size, length: UInt32(length),
                hashOfData: [UInt8](repeating: UInt8(i), count: 32),
                blockHashes: (0..<blocks).map { [UInt8](repeating: UInt8(truncatingIfNeeded: $0), count: 32) })
        }
        let hashes = ContentHashes(version: .v1, algorithm: .sha256, contentLength: 9 * size + lastLength, segments: segments)
        for (offset, length) in Self.ranges(length: hashes.contentLength, seed: 3) + [(size - 1, 2), (size, size), (size, size + 1)] {
            try Self.check(hashes, secret: secret, offset: offset, length: length)
        }
        // A range ending exactly at a segment end lists that segment's blocks in full, dwReadBytes 0.
        let bytes = try ContentInformation.encode(hashes, secret: secret, offset: 5, length: 2 * size - 5)
        #expect(TestSupport.le(bytes, 10, 4) == 0)
        #expect(TestSupport.le(bytes, 14, 4) == 2)
    }
}
