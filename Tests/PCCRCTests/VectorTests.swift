import Testing

@testable import PCCRC

@Suite("MS-PCCRC test vectors (PEERDIST.md §5.6 b, c)")
struct VectorTests {
    let vectors = TestSupport.vectors

    @Test("C2 is MS_P2P_CACHING in UTF-16LE with NUL (30 bytes)")
    func c2Constant() {
        #expect(SegmentKeys.c2.count == 30)
        #expect(TestSupport.hex(SegmentKeys.c2) == "4d0053005f00500032005000" + "5f00430041004300480049004e0047000000")
    }

    @Test("Windows V1 sample parses and re-serializes byte-identically")
    func windowsV1RoundTrip() throws {
        let bytes = TestSupport.bytes(hex: vectors.windowsSamples.v1.contentInformationHex)
        #expect(bytes.count == 166)
        let parsed = try ContentInformation.parse(bytes)
        guard case .v1(let info) = parsed else {
            Issue.record("expected V1")
            return
        }
        #expect(info.hashAlgorithm == .sha256)
        #expect(info.offsetInFirstSegment == 0)
        #expect(info.readBytesInLastSegment == 0)
        #expect(info.segments.count == 1)
        #expect(info.segments[0].segmentLength == 99_710)
        #expect(info.segments[0].blockSize == 65_536)
        #expect(info.segments[0].blockHashes.count == 2)
        #expect(TestSupport.hex(info.segments[0].hashOfData) == vectors.windowsSamples.v1.hod)
        #expect(TestSupport.hex(info.segments[0].segmentSecret) == vectors.windowsSamples.v1.kp)
        #expect(info.contentRange == 0..<99_710)
        #expect(info.serialize() == bytes)
        #expect(parsed.serialize() == bytes)
    }

    @Test("Windows V1 sample: Ks, Kp, HoHoDk and HoD = H(block hashes)")
    func windowsV1Keys() throws {
        let sample = vectors.windowsSamples
        let secret = ServerSecret(keyBytes: TestSupport.bytes(hex: sample.secretKeyHex))
        let ks = secret.ksV1(.sha256)
        #expect(TestSupport.hex(ks) == sample.v1.ks)
        let info = try ContentInformationV1.parse(TestSupport.bytes(hex: sample.v1.contentInformationHex))
        let segment = info.segments[0]
        let hashes = ContentHashes(
            version: .v1, algorithm: .sha256, contentLength: 99_710,
            segments: [SegmentHashes(offset: 0, length: 99_710, hashOfData: segment.hashOfData, blockHashes: segment.blockHashes)])
        let kp = SegmentKeys.segmentSecret(version: .v1, algorithm: .sha256, ks: ks, hashOfData: segment.hashOfData)
        #expect(TestSupport.hex(kp) == sample.v1.kp)
        let id = SegmentKeys.segmentID(version: .v1, algorithm: .sha256, kp: kp, hashOfData: segment.hashOfData)
        #expect(TestSupport.hex(id) == sample.v1.hohodk)
        #expect(hashes.segmentIDs(secret: secret).map(TestSupport.hex) == [sample.v1.hohodk])
        // Re-encoding the Windows digests with the Windows secret reproduces Windows' bytes.
        let encoded = try ContentInformation.encode(hashes, secret: secret, offset: 0, length: 0)
        #expect(TestSupport.hex(encoded) == sample.v1.contentInformationHex)
    }

    @Test("Windows V2 sample parses, re-serializes, and its keys derive")
    func windowsV2() throws {
        let sample = vectors.windowsSamples
        let bytes = TestSupport.bytes(hex: sample.v2.contentInformationHex)
        #expect(bytes.count == 172)
        let parsed = try ContentInformation.parse(bytes)
        guard case .v2(let info) = parsed else {
            Issue.record("expected V2")
            return
        }
        #expect(info.startInContent == 0)
        #expect(info.indexOfFirstSegment == 0)
        #expect(info.offsetInFirstSegment == 0)
        #expect(info.lengthOfRange == 0)
        #expect(info.segments.map(\.segmentLength) == sample.v2.segments.map(\.cbSegment))
        #expect(info.contentRange == 0..<99_710)
        #expect(info.serialize() == bytes)

        let secret = ServerSecret(keyBytes: TestSupport.bytes(hex: sample.secretKeyHex))
        #expect(TestSupport.hex(secret.ksV2) == sample.v2.ks)
        var offset: UInt64 = 0
        var segments = [SegmentHashes]()
        for (parsedSegment, expected) in zip(info.segments, sample.v2.segments) {
            #expect(TestSupport.hex(parsedSegment.hashOfData) == expected.hod)
            #expect(TestSupport.hex(parsedSegment.segmentSecret) == expected.kp)
            let kp = SegmentKeys.segmentSecret(
                version: .v2, algorithm: .sha256, ks: secret.ksV2, hashOfData: parsedSegment.hashOfData)
            #expect(TestSupport.hex(kp) == expected.kp)
            let id = SegmentKeys.segmentID(version: .v2, algorithm: .sha256, kp: kp, hashOfData: parsedSegment.hashOfData)
            #expect(TestSupport.hex(id) == expected.hohodk)
            segments.append(
                SegmentHashes(offset: offset, length: parsedSegment.segmentLength, hashOfData: parsedSegment.hashOfData, blockHashes: []))
            offset += UInt64(parsedSegment.segmentLength)
        }
        let hashes = ContentHashes(version: .v2, algorithm: .sha256, contentLength: offset, segments: segments)
        #expect(try ContentInformation.encode(hashes, secret: secret, offset: 0, length: 0) == bytes)
    }

    @Test("Self-derived 128,000-byte vector, V1: hashing gives the listed bytes and keys")
    func selfDerivedV1() throws {
        let vector = vectors.selfDerived
        let secret = ServerSecret(keyBytes: Array(vector.secretKeyAscii.utf8))
        #expect(TestSupport.hex(secret.ksV1(.sha256)) == vector.v1.ks)
        let hashes = ContentHashes.hashing(TestSupport.selfDerivedContent, version: .v1)
        #expect(hashes.contentLength == 128_000)
        #expect(hashes.segments.count == 1)
        let segment = hashes.segments[0]
        #expect(segment.length == 128_000)
        #expect(segment.blockHashes.map(TestSupport.hex) == vector.v1.blockHashes)
        #expect(TestSupport.hex(segment.hashOfData) == vector.v1.hod)
        let kp = SegmentKeys.segmentSecret(version: .v1, algorithm: .sha256, ks: secret.ksV1(.sha256), hashOfData: segment.hashOfData)
        #expect(TestSupport.hex(kp) == vector.v1.kp)
        #expect(hashes.segmentIDs(secret: secret).map(TestSupport.hex) == [vector.v1.hohodk])
        let encoded = try ContentInformation.encode(hashes, secret: secret, offset: 0, length: 0)
        #expect(TestSupport.hex(encoded) == vector.v1.contentInformationHex)
    }

    @Test("Self-derived 128,000-byte vector, V2: the chunker keeps one segment; bytes and keys match")
    func selfDerivedV2() throws {
        let vector = vectors.selfDerived
        let secret = ServerSecret(keyBytes: Array(vector.secretKeyAscii.utf8))
        #expect(TestSupport.hex(secret.ksV2) == vector.v2.ks)
        let expected = vector.v2.segments[0]
        // Through the real chunker.
        let hashes = ContentHashes.hashing(TestSupport.selfDerivedContent, version: .v2)
        #expect(hashes.segments.map(\.length) == [128_000])
        #expect(TestSupport.hex(hashes.segments[0].hashOfData) == expected.hod)
        #expect(hashes.segmentIDs(secret: secret).map(TestSupport.hex) == [expected.hohodk])
        let encoded = try ContentInformation.encode(hashes, secret: secret, offset: 0, length: 0)
        #expect(TestSupport.hex(encoded) == vector.v2.contentInformationHex)
        // With the segmentation given explicitly (independent of the chunker), as the vector file asks.
        let explicit = ContentHashes(
            version: .v2, algorithm: .sha256, contentLength: 128_000,
            segments: [SegmentHashes(offset: 0, length: 128_000, hashOfData: TestSupport.bytes(hex: expected.hod), blockHashes: [])])
        #expect(TestSupport.hex(try ContentInformation.encode(explicit, secret: secret, offset: 0, length: 0)) == vector.v2.contentInformationHex)
        let kp = SegmentKeys.segmentSecret(version: .v2, algorithm: .sha256, ks: secret.ksV2, hashOfData: TestSupport.bytes(hex: expected.hod))
        #expect(TestSupport.hex(kp) == expected.kp)
    }
}
