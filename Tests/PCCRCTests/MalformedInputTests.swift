import Testing

@testable import PCCRC

@Suite("Strict parsers: malformed input")
struct MalformedInputTests {
    static let v1 = TestSupport.bytes(hex: TestSupport.vectors.windowsSamples.v1.contentInformationHex)
    static let v2 = TestSupport.bytes(hex: TestSupport.vectors.windowsSamples.v2.contentInformationHex)

    static func patched(_ bytes: [UInt8], _ offset: Int, _ value: [UInt8]) -> [UInt8] {
        var copy = bytes
        copy.replaceSubrange(offset..<(offset + value.count), with: value)
        return copy
    }

    static func isCannotParse(_ bytes: [UInt8]) -> Bool {
        do {
            _ = try ContentInformation.parse(bytes)
            return false
        } catch {
            if case .cannotParse = error { return true }
            return false
        }
    }

    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let bytes: [UInt8]
        let expected: PCCRCError?  // nil: .cannotParse whose message contains `reason`
        var reason = ""
        var testDescription: String { name }
    }

    static let v1Cases: [Case] = [
        Case(name: "empty", bytes: [], expected: nil, reason: "truncated"),
        Case(name: "one byte", bytes: [0x00], expected: nil, reason: "truncated"),
        Case(name: "version 0x0300", bytes: patched(v1, 0, [0x00, 0x03]), expected: .versionUnsupported),
        Case(name: "version 0x0101", bytes: patched(v1, 0, [0x01, 0x01]), expected: .versionUnsupported),
        Case(name: "dwHashAlgo 0x800B", bytes: patched(v1, 2, [0x0B, 0x80, 0, 0]), expected: .versionUnsupported),
        Case(name: "dwHashAlgo SHA-384 with SHA-256-sized data", bytes: patched(v1, 2, [0x0D, 0x80, 0, 0]), expected: nil, reason: "truncated"),
        Case(name: "trailing garbage", bytes: v1 + [0], expected: nil, reason: "trailing"),
        Case(name: "cbBlockSize 0x8000", bytes: patched(v1, 30, [0x00, 0x80, 0x00, 0x00]), expected: nil, reason: "cbBlockSize"),
        Case(name: "cBlocks 3", bytes: patched(v1, 98, [3, 0, 0, 0]), expected: nil, reason: "cBlocks mismatch"),
        Case(name: "cBlocks 1", bytes: Array(patched(v1, 98, [1, 0, 0, 0]).prefix(134)), expected: nil, reason: "cBlocks mismatch"),
        Case(name: "cBlocks 0xFFFFFFFF", bytes: patched(v1, 98, [0xFF, 0xFF, 0xFF, 0xFF]), expected: nil, reason: "cBlocks mismatch"),
        Case(name: "cSegments 0xFFFFFFFF", bytes: patched(v1, 14, [0xFF, 0xFF, 0xFF, 0xFF]), expected: nil, reason: "truncated"),
        Case(name: "cSegments 2", bytes: patched(v1, 14, [2, 0, 0, 0]), expected: nil, reason: "truncated"),
        Case(name: "cSegments 0", bytes: patched(v1, 14, [0, 0, 0, 0]), expected: nil, reason: "trailing"),
        Case(name: "cbSegment 0", bytes: patched(v1, 26, [0, 0, 0, 0]), expected: nil, reason: "cbSegment 0"),
        Case(name: "cbSegment 32 MiB + 1", bytes: patched(v1, 26, [1, 0, 0, 2]), expected: nil, reason: "cbSegment"),
        Case(name: "ullOffsetInContent unaligned", bytes: patched(v1, 18, [1, 0, 0, 0]), expected: nil, reason: "ullOffsetInContent"),
        Case(name: "dwOffsetInFirstSegment past the segment", bytes: patched(v1, 6, [0x7E, 0x85, 0x01, 0x00]), expected: nil, reason: "dwOffsetInFirstSegment"),
        Case(name: "dwReadBytesInLastSegment past the segment", bytes: patched(v1, 10, [0x7F, 0x85, 0x01, 0x00]), expected: nil, reason: "dwReadBytesInLastSegment"),
        Case(name: "dwReadBytesInLastSegment that needs 1 block", bytes: patched(v1, 10, [0x00, 0x10, 0x00, 0x00]), expected: nil, reason: "cBlocks mismatch"),
    ]

    static let v2Cases: [Case] = [
        Case(name: "bMajorVersion 3", bytes: patched(v2, 1, [0x03]), expected: .versionUnsupported),
        Case(name: "bMinorVersion 1", bytes: patched(v2, 0, [0x01]), expected: .versionUnsupported),
        Case(name: "bHashAlgo 0x01", bytes: patched(v2, 2, [0x01]), expected: .versionUnsupported),
        Case(name: "bChunkType 1", bytes: patched(v2, 31, [0x01]), expected: nil, reason: "bChunkType"),
        Case(name: "dwChunkDataLength 0x87", bytes: patched(v2, 32, [0, 0, 0, 0x87]), expected: nil, reason: "multiple of 68"),
        Case(name: "dwChunkDataLength 0", bytes: patched(v2, 32, [0, 0, 0, 0]), expected: nil, reason: "multiple of 68"),
        Case(name: "dwChunkDataLength 68,000,000", bytes: patched(v2, 32, [0x04, 0x0D, 0x99, 0x00]), expected: nil, reason: "chunk data needs"),
        Case(name: "dwChunkDataLength 68 (second segment left as garbage)", bytes: patched(v2, 32, [0, 0, 0, 0x44]), expected: nil, reason: "dwChunkDataLength"),
        Case(name: "trailing 3 bytes", bytes: v2 + [0, 0, 0], expected: nil, reason: "ChunkDescription header"),
        Case(name: "trailing empty chunk", bytes: v2 + [0, 0, 0, 0, 0], expected: nil, reason: "multiple of 68"),
        Case(name: "cbSegment 0", bytes: patched(v2, 36, [0, 0, 0, 0]), expected: nil, reason: "cbSegment 0"),
        Case(name: "cbSegment 131,073", bytes: patched(v2, 36, [0, 0x02, 0x00, 0x01]), expected: nil, reason: "outside 1...131072"),
        Case(name: "dwOffsetInFirstSegment past the segment", bytes: patched(v2, 19, [0, 0, 0x99, 0xDE]), expected: nil, reason: "dwOffsetInFirstSegment"),
        Case(name: "ullLengthOfRange past the segments", bytes: patched(v2, 23, [0, 0, 0, 0, 0, 0x01, 0x85, 0x7F]), expected: nil, reason: "ullLengthOfRange"),
        Case(name: "ullLengthOfRange ending before the last segment", bytes: patched(v2, 23, [0, 0, 0, 0, 0, 0, 0, 0x10]), expected: nil, reason: "ullLengthOfRange"),
        Case(name: "ullStartInContent overflows", bytes: patched(v2, 3, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]), expected: nil, reason: "overflows"),
        Case(name: "range fields without segments", bytes: patched(Array(v2.prefix(31)), 30, [1]), expected: nil, reason: "without segments"),
    ]

    @Test("V1 malformed table", arguments: v1Cases)
    func v1Table(_ c: Case) {
        check(c)
    }

    @Test("V2 malformed table", arguments: v2Cases)
    func v2Table(_ c: Case) {
        check(c)
    }

    func check(_ c: Case) {
        do {
            let parsed = try ContentInformation.parse(c.bytes)
            Issue.record("\(c.name) parsed: \(parsed)")
        } catch {
            if let expected = c.expected {
                #expect(error == expected)
            } else if case .cannotParse(let message) = error {
                #expect(message.contains(c.reason), "\(c.name): \(message)")
            } else {
                Issue.record("\(c.name): \(error), expected cannotParse")
            }
        }
    }

    @Test("Valid variants are accepted: ranged fields within the segment")
    func validVariants() throws {
        // V1: a range [70,000, 99,710) in the Windows sample (offset 70,000, to the end).
        let ranged = Self.patched(Self.v1, 6, [0x70, 0x11, 0x01, 0x00])
        #expect(try ContentInformation.parse(ranged).contentRange == 70_000..<99_710)
        // V2: ullLengthOfRange 60,320 starting at 39,390 (the second segment only, first still listed).
        let v2 = Self.patched(Self.patched(Self.v2, 19, [0, 0, 0x99, 0xDD]), 23, [0, 0, 0, 0, 0, 0, 0xEB, 0xA1])
        #expect(try ContentInformation.parse(v2).contentRange == 39_389..<99_710)
    }

    @Test("Every truncation of both samples is rejected as cannotParse")
    func truncations() {
        for count in 0..<Self.v1.count {
            #expect(Self.isCannotParse(Array(Self.v1.prefix(count))), "V1 prefix \(count)")
        }
        // 31 bytes (the header alone, no segments) is the valid structure of an empty content.
        for count in 0..<Self.v2.count where count != 31 {
            #expect(Self.isCannotParse(Array(Self.v2.prefix(count))), "V2 prefix \(count)")
        }
    }

    @Test("Random corruption never crashes")
    func fuzz() {
        let noise = TestSupport.randomBytes(count: 3 * 4_000, seed: 1234)
        for i in 0..<4_000 {
            var bytes = i % 2 == 0 ? Self.v1 : Self.v2
            let position = Int(noise[3 * i]) % bytes.count
            bytes[position] = noise[3 * i + 1]
            if noise[3 * i + 2] < 40 { bytes = Array(bytes.prefix(Int(noise[3 * i + 2]) * 4)) }
            if let parsed = try? ContentInformation.parse(bytes) {
                #expect(parsed.serialize() == bytes)
            }
        }
    }
}
