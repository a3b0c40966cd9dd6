internal import Crypto

/// Computes an entry's digest with swift-crypto (the same library as the PCCRC target).
enum EntryHasher {
    /// The digest of `bytes` under `function`: full SHA-256/384/512 for V1, SHA-512's first 32
    /// bytes for V2.
    static func digest(_ function: BlockHashFunction, _ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        switch function {
        case .v1(.sha256): SHA256.hash(data: bytes).withUnsafeBytes { Array($0) }
        case .v1(.sha384): SHA384.hash(data: bytes).withUnsafeBytes { Array($0) }
        case .v1(.sha512): SHA512.hash(data: bytes).withUnsafeBytes { Array($0.prefix(64)) }
        case .v2: SHA512.hash(data: bytes).withUnsafeBytes { Array($0.prefix(32)) }
        }
    }

    /// Whether `bytes` hash to `expected`.
    static func matches(_ bytes: [UInt8], _ expected: BlockDigest) -> Bool {
        bytes.withUnsafeBytes { digest(expected.function, $0) } == expected.bytes
    }

    /// Whether `bytes` hash to `expected`.
    static func matches(_ bytes: ArraySlice<UInt8>, _ expected: BlockDigest) -> Bool {
        bytes.withUnsafeBytes { matches($0, expected) }
    }

    /// Whether `bytes` hash to `expected`.
    static func matches(_ bytes: UnsafeRawBufferPointer, _ expected: BlockDigest) -> Bool {
        digest(expected.function, bytes) == expected.bytes
    }
}
