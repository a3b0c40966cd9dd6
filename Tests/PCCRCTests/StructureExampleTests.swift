import Testing

@testable import PCCRC

/// MS-PCCRC §3 structure examples (PEERDIST.md §5.6 a). Secret "no more secrets".
@Suite("MS-PCCRC structure examples")
struct StructureExampleTests {
    let secret = ServerSecret(keyBytes: Array("no more secrets".utf8))
    let le = TestSupport.le
    let be = TestSupport.be

    /// 125 MB = 3 · 0x2000000 + 0x1D00000 = 131,072,000 bytes, hashed for real from a 1 MiB pattern.
    static let content125MB: ContentHashes = {
        let pattern = TestSupport.randomBytes(count: 1 << 20, seed: 125)
        var hasher = ContentHasher(version: .v1)
        for _ in 0..<125 {
            hasher.update(pattern)
        }
        return hasher.finalize()
    }()

    @Test("§3.1/3.2 whole 125 KB V1: offsets and sizes; dwReadBytesInLastSegment is 0 (our choice)")
    func wholeSmallV1() throws {
        let hashes = ContentHashes.hashing(TestSupport.selfDerivedContent, version: .v1)
        let bytes = try ContentInformation.encode(hashes, secret: secret, offset: 0, length: 0)
        #expect(bytes.count == 166)
        #expect(le(bytes, 0, 2) == 0x100)
        #expect(le(bytes, 2, 4) == 0x800C)
        #expect(le(bytes, 6, 4) == 0)
        #expect(le(bytes, 10, 4) == 0)  // §3.2 and Windows; §3.1 shows 128000
        #expect(le(bytes, 14, 4) == 1)
        #expect(le(bytes, 18, 8) == 0)
        #expect(le(bytes, 26, 4) == 128_000)
        #expect(le(bytes, 30, 4) == 0x10000)
        #expect(Array(bytes[34..<66]) == hashes.segments[0].hashOfData)
        #expect(le(bytes, 98, 4) == 2)
        #expect(Array(bytes[102..<134]) == hashes.segments[0].blockHashes[0])
        #expect(Array(bytes[134..<166]) == hashes.segments[0].blockHashes[1])
        // The §3.1 form (128000) parses to the same range.
        var spec31 = bytes
        spec31.replaceSubrange(10..<14, with: [0x00, 0xF4, 0x01, 0x00])
        let parsed = try ContentInformationV1.parse(spec31)
        #expect(parsed.readBytesInLastSegment == 128_000)
        #expect(parsed.contentRange == 0..<128_000)
        #expect(try ContentInformationV1.parse(bytes).contentRange == 0..<128_000)
    }

    @Test("§3.3 range 100 KB..125 KB V1: dwOffsetInFirstSegment 102400, 0, cBlocks 2")
    func rangeSmallV1() throws {
        let hashes = ContentHashes.hashing(TestSupport.selfDerivedContent, version: .v1)
        let bytes = try ContentInformation.encode(hashes, secret: secret, offset: 102_400, length: 25_600)
        #expect(bytes.count == 166)
        #expect(le(bytes, 6, 4) == 102_400)
        #expect(le(bytes, 10, 4) == 0)
        #expect(le(bytes, 14, 4) == 1)
        #expect(le(bytes, 26, 4) == 128_000)
        #expect(le(bytes, 98, 4) == 2)
        #expect(Array(bytes[102..<134]) == hashes.segments[0].blockHashes[0])  // block 0 listed too
        #expect(try ContentInformation.parse(bytes).contentRange == 102_400..<128_000)
        // A range ending inside the segment: one segment, dwReadBytesInLastSegment = range length.
        let inner = try ContentInformation.encode(hashes, secret: secret, offset: 70_000, length: 1_000)
        #expect(le(inner, 6, 4) == 70_000)
        #expect(le(inner, 10, 4) == 1_000)
        #expect(le(inner, 98, 4) == 2)
        let head = try ContentInformation.encode(hashes, secret: secret, offset: 10, length: 100)
        #expect(le(head, 10, 4) == 100)
        #expect(le(head, 98, 4) == 1)
        #expect(head.count == 134)
    }

    @Test("§3.4 whole 125 MB V1: 4 segments, cBlocks 512/512/512/464 at 338/16726/33114/49502, 64,354 bytes")
    func wholeLargeV1() throws {
        let hashes = Self.content125MB
        #expect(hashes.contentLength == 131_072_000)
        #expect(hashes.segments.map(\.offset) == [0, 0x200_0000, 0x400_0000, 0x600_0000])
        #expect(hashes.segments.map(\.length) == [0x200_0000, 0x200_0000, 0x200_0000, 0x1D0_0000])
        #expect(hashes.segments.map(\.blockHashes.count) == [512, 512, 512, 464])
        // Identical 32 MiB segments (1 MiB-periodic content) hash identically.
        #expect(hashes.segments[1].hashOfData == hashes.segments[0].hashOfData)
        #expect(hashes.segments[3].blockHashes == Array(hashes.segments[0].blockHashes.prefix(464)))
        #expect(hashes.segments[3].hashOfData != hashes.segments[0].hashOfData)

        let bytes = try ContentInformation.encode(hashes, secret: secret, offset: 0, length: 0)
        #expect(bytes.count == 64_354)
        #expect(le(bytes, 6, 4) == 0)
        #expect(le(bytes, 10, 4) == 0)  // Windows' whole-content form; §3.4 shows 0x1D00000
        #expect(le(bytes, 14, 4) == 4)
        for (i, offset) in [0, 0x200_0000, 0x400_0000, 0x600_0000].enumerated() {
            #expect(le(bytes, 18 + 80 * i, 8) == UInt64(offset))
            #expect(le(bytes, 18 + 80 * i + 12, 4) == 0x10000)
        }
        #expect(le(bytes, 18 + 80 * 3 + 8, 4) == 0x1D0_0000)
        #expect(le(bytes, 338, 4) == 512)
        #expect(le(bytes, 16_726, 4) == 512)
        #expect(le(bytes, 33_114, 4) == 512)
        #expect(le(bytes, 49_502, 4) == 464)
        #expect(Array(bytes[64_322..<64_354]) == hashes.segments[3].blockHashes[463])

        let parsed = try ContentInformationV1.parse(bytes)
        #expect(parsed.serialize() == bytes)
        #expect(parsed.contentRange == 0..<131_072_000)
        // The §3.4 form (0x1D00000) is accepted and means the same range.
        var spec34 = bytes
        spec34.replaceSubrange(10..<14, with: [0x00, 0x00, 0xD0, 0x01])
        let parsed34 = try ContentInformationV1.parse(spec34)
        #expect(parsed34.readBytesInLastSegment == 0x1D0_0000)
        #expect(parsed34.contentRange == 0..<131_072_000)
        #expect(parsed34.serialize() == spec34)
    }

    @Test("§3.5 range 100 KB..124 MB V1: 102400, 0x1C00000, cBlocks 512/512/512/448")
    func rangeLargeV1() throws {
        let hashes = Self.content125MB
        let start: UInt64 = 102_400
        let end: UInt64 = 124 << 20
        let bytes = try ContentInformation.encode(hashes, secret: secret, offset: start, length: end - start)
        #expect(le(bytes, 6, 4) == 102_400)
        #expect(le(bytes, 10, 4) == 0x1C0_0000)
        #expect(le(bytes, 14, 4) == 4)
        #expect(le(bytes, 18 + 80 * 3 + 8, 4) == 0x1D0_0000)  // cbSegment stays the full length
        #expect(le(bytes, 338, 4) == 512)
        #expect(le(bytes, 16_726, 4) == 512)
        #expect(le(bytes, 33_114, 4) == 512)
        #expect(le(bytes, 49_502, 4) == 448)
        #expect(bytes.count == 49_506 + 448 * 32)
        let parsed = try ContentInformationV1.parse(bytes)
        #expect(parsed.contentRange == start..<end)
        #expect(parsed.segments[3].blockHashes == Array(hashes.segments[3].blockHashes.prefix(448)))
        #expect(parsed.segments[0].blockHashes == hashes.segments[0].blockHashes)
    }

    /// §3.6: segments of 60, 85 and 44 KB.
    static let v2Example = ContentHashes(
        version: .v2, algorithm: .sha256, contentLength: 0x2F400,
        segments: [
            SegmentHashes(offset: 0, length: 0xF000, hashOfData: [UInt8](repeating: 1, count: 32), blockHashes: []),
            SegmentHashes(offset: 0xF000, length: 0x15400, hashOfData: [UInt8](repeating: 2, count: 32), blockHashes: []),
            SegmentHashes(offset: 0x24400, length: 0xB000, hashOfData: [UInt8](repeating: 3, count: 32), blockHashes: []),
        ])

    @Test("§3.6 whole 189 KB V2: header, one chunk of 0xCC, segments at 36/104/172; ullLengthOfRange 0 (ours)")
    func wholeV2() throws {
        let bytes = try ContentInformation.encode(Self.v2Example, secret: secret, offset: 0, length: 0)
        #expect(bytes.count == 31 + 5 + 3 * 68)
        #expect(Array(bytes[0..<3]) == [0x00, 0x02, 0x04])
        #expect(be(bytes, 3, 8) == 0)
        #expect(be(bytes, 11, 8) == 0)
        #expect(be(bytes, 19, 4) == 0)
        #expect(be(bytes, 23, 8) == 0)  // Windows; §3.6 shows 0x2F400
        #expect(bytes[31] == 0)
        #expect(be(bytes, 32, 4) == 0xCC)
        #expect(be(bytes, 36, 4) == 0xF000)
        #expect(be(bytes, 104, 4) == 0x15400)
        #expect(be(bytes, 172, 4) == 0xB000)
        #expect(Array(bytes[176..<208]) == [UInt8](repeating: 3, count: 32))
        let kp = SegmentKeys.segmentSecret(version: .v2, algorithm: .sha256, ks: secret.ksV2, hashOfData: [UInt8](repeating: 3, count: 32))
        #expect(Array(bytes[208..<240]) == kp)
        #expect(try ContentInformation.parse(bytes).contentRange == 0..<0x2F400)
        // The §3.6 form (ullLengthOfRange = 0x2F400) is accepted.
        var spec36 = bytes
        spec36.replaceSubrange(23..<31, with: [0, 0, 0, 0, 0, 0x02, 0xF4, 0x00])
        let parsed = try ContentInformationV2.parse(spec36)
        #expect(parsed.lengthOfRange == 0x2F400)
        #expect(parsed.contentRange == 0..<0x2F400)
        // An explicit whole range gives that form.
        #expect(try ContentInformation.encode(Self.v2Example, secret: secret, offset: 0, length: 0x2F400) == spec36)
    }

    @Test("§3.7 range 100..110 KB V2: start 0xF000, index 1, offset 0xA000, length 0x2800, one segment")
    func rangeV2() throws {
        let bytes = try ContentInformation.encode(Self.v2Example, secret: secret, offset: 102_400, length: 10_240)
        #expect(bytes.count == 31 + 5 + 68)
        #expect(be(bytes, 3, 8) == 0xF000)
        #expect(be(bytes, 11, 8) == 1)
        #expect(be(bytes, 19, 4) == 0xA000)
        #expect(be(bytes, 23, 8) == 0x2800)
        #expect(bytes[31] == 0)
        #expect(be(bytes, 32, 4) == 0x44)
        #expect(be(bytes, 36, 4) == 0x15400)
        #expect(try ContentInformation.parse(bytes).contentRange == 102_400..<112_640)
    }

    @Test("Empty content: (0, 0) gives a structure with no segments; other ranges are out of bounds")
    func emptyContent() throws {
        for version in [PCCRCVersion.v1, .v2] {
            let hashes = ContentHashes.hashing([], version: version)
            #expect(hashes.contentLength == 0)
            #expect(hashes.segments.isEmpty)
            let bytes = try ContentInformation.encode(hashes, secret: secret, offset: 0, length: 0)
            #expect(bytes.count == (version == .v1 ? 18 : 31))
            let parsed = try ContentInformation.parse(bytes)
            #expect(parsed.version == version)
            #expect(parsed.contentRange == 0..<0)
            #expect(parsed.serialize() == bytes)
            #expect(throws: PCCRCError.rangeOutOfBounds) {
                try ContentInformation.encode(hashes, secret: secret, offset: 0, length: 1)
            }
        }
        #expect(TestSupport.hex(try ContentInformation.encode(ContentHashes.hashing([], version: .v1), secret: secret, offset: 0, length: 0)) == "00010c80" + String(repeating: "0", count: 28))
    }

    static let outOfBoundsRanges: [(UInt64, UInt64)] = [
        (128_000, 1), (127_999, 2), (0, 128_001), (5, 0), (UInt64.max, 1), (1, UInt64.max),
    ]

    @Test("Out-of-bounds ranges", arguments: outOfBoundsRanges)
    func outOfBounds(offset: UInt64, length: UInt64) {
        for version in [PCCRCVersion.v1, .v2] {
            let hashes = ContentHashes.hashing(TestSupport.selfDerivedContent, version: version)
            #expect(throws: PCCRCError.rangeOutOfBounds) {
                try ContentInformation.encode(hashes, secret: secret, offset: offset, length: length)
            }
        }
    }
}
