import Foundation
import Testing

@testable import PCCRC

/// Hex helpers and the vector file.
enum TestSupport {
    static func bytes(hex: String) -> [UInt8] {
        var result = [UInt8]()
        var iterator = hex.utf8.makeIterator()
        while let high = iterator.next(), let low = iterator.next() {
            result.append(UInt8(nibble(high) << 4 | nibble(low)))
        }
        return result
    }

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    private static func nibble(_ c: UInt8) -> Int {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(c - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(c - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(c - UInt8(ascii: "A") + 10)
        default: -1000
        }
    }

    /// The decoded `Vectors/pccrc.json`.
    static let vectors: Vectors = {
        guard let url = Bundle.module.url(forResource: "pccrc", withExtension: "json", subdirectory: "Vectors") else {
            preconditionFailure("Vectors/pccrc.json missing from the test bundle")
        }
        do {
            return try JSONDecoder().decode(Vectors.self, from: Data(contentsOf: url))
        } catch {
            preconditionFailure("cannot decode pccrc.json: \(error)")
        }
    }()

    /// Content of the self-derived vector: 128,000 bytes, byte i = i mod 256.
    static let selfDerivedContent: [UInt8] = (0..<128_000).map { UInt8(truncatingIfNeeded: $0) }

    /// Deterministic pseudo-random bytes (SplitMix64), for chunker and streaming tests.
    static func randomBytes(count: Int, seed: UInt64) -> [UInt8] {
        var state = seed
        var result = [UInt8]()
        result.reserveCapacity(count + 8)
        while result.count < count {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            for shift in stride(from: 0, to: 64, by: 8) {
                result.append(UInt8(truncatingIfNeeded: z >> UInt64(shift)))
            }
        }
        return Array(result.prefix(count))
    }

    /// Reads a little-endian integer of `size` bytes at `offset`.
    static func le(_ bytes: [UInt8], _ offset: Int, _ size: Int) -> UInt64 {
        (0..<size).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64(bytes[offset + $1]) }
    }

    /// Reads a big-endian integer of `size` bytes at `offset`.
    static func be(_ bytes: [UInt8], _ offset: Int, _ size: Int) -> UInt64 {
        (0..<size).reduce(UInt64(0)) { $0 << 8 | UInt64(bytes[offset + $1]) }
    }
}

struct Vectors: Decodable {
    struct SegmentVector: Decodable {
        let cbSegment: UInt32
        let hod: String
        let kp: String
        let hohodk: String
    }

    struct WindowsV1: Decodable {
        let contentInformationHex: String
        let ks: String
        let hod: String
        let kp: String
        let hohodk: String
    }

    struct V2: Decodable {
        let contentInformationHex: String
        let ks: String
        let segments: [SegmentVector]
    }

    struct WindowsSamples: Decodable {
        let secretKeyHex: String
        let v1: WindowsV1
        let v2: V2
    }

    struct SelfV1: Decodable {
        let contentInformationHex: String
        let ks: String
        let blockHashes: [String]
        let hod: String
        let kp: String
        let hohodk: String
    }

    struct SelfDerived: Decodable {
        let contentSha256: String
        let secretKeyAscii: String
        let v1: SelfV1
        let v2: V2
    }

    let windowsSamples: WindowsSamples
    let selfDerived: SelfDerived
}
