/// Derivation of the per-segment secret `Kp` and the public segment ID `HoHoDk` (MS-PCCRC §2.2).
///
/// Both are HMACs built on the content information's hash. For version 2.0 the HMAC is the full
/// HMAC-SHA-512 (128-byte block) keyed with the 32-byte key, and its 64-byte output is then
/// truncated to 32 bytes (verified against Windows output, PEERDIST.md §5.2).
public enum SegmentKeys {
    /// `C2`: "MS_P2P_CACHING" in UTF-16LE including its two-byte NUL terminator (30 bytes).
    /// MS-PCCRC calls it null-terminated ASCII; only the UTF-16LE form reproduces Windows' output.
    public static let c2: [UInt8] = {
        var bytes = [UInt8]()
        for unit in "MS_P2P_CACHING".utf16 {
            bytes.append(UInt8(truncatingIfNeeded: unit))
            bytes.append(UInt8(truncatingIfNeeded: unit >> 8))
        }
        bytes.append(contentsOf: [0, 0])
        return bytes
    }()

    /// The segment secret `Kp = HMAC(Ks, HoD)`.
    /// - Parameters:
    ///   - version: Content information version (selects HMAC-H or truncated HMAC-SHA-512).
    ///   - algorithm: V1 hash algorithm; ignored for version 2.0.
    ///   - ks: The server secret hash (`ServerSecret.ksV1(_:)` or `ServerSecret.ksV2`).
    ///   - hashOfData: The segment's `HoD`.
    /// - Returns: `Kp` (digest size of the algorithm; 32 bytes for version 2.0).
    public static func segmentSecret(
        version: PCCRCVersion, algorithm: V1HashAlgorithm, ks: [UInt8], hashOfData: [UInt8]
    ) -> [UInt8] {
        mac(version: version, algorithm: algorithm, key: ks, message: hashOfData)
    }

    /// The segment ID `HoHoDk = HMAC(Kp, HoD + C2)`, used by discovery and retrieval.
    /// - Parameters:
    ///   - version: Content information version (selects HMAC-H or truncated HMAC-SHA-512).
    ///   - algorithm: V1 hash algorithm; ignored for version 2.0.
    ///   - kp: The segment secret from `segmentSecret(version:algorithm:ks:hashOfData:)`.
    ///   - hashOfData: The segment's `HoD`.
    /// - Returns: `HoHoDk` (digest size of the algorithm; 32 bytes for version 2.0).
    public static func segmentID(
        version: PCCRCVersion, algorithm: V1HashAlgorithm, kp: [UInt8], hashOfData: [UInt8]
    ) -> [UInt8] {
        mac(version: version, algorithm: algorithm, key: kp, message: hashOfData + c2)
    }

    /// A V1 segment's `HoD = H(BlockHash_1 + … + BlockHash_n)`, over all its blocks' hashes
    /// (PEERDIST.md §5.2).
    public static func v1HashOfData(algorithm: V1HashAlgorithm, blockHashes: [[UInt8]]) -> [UInt8] {
        var concatenated = [UInt8]()
        concatenated.reserveCapacity(blockHashes.count * algorithm.digestSize)
        for hash in blockHashes {
            concatenated.append(contentsOf: hash)
        }
        return DigestState.hash(algorithm.digestKind, concatenated)
    }

    // MARK: - Private

    private static func mac(
        version: PCCRCVersion, algorithm: V1HashAlgorithm, key: [UInt8], message: [UInt8]
    ) -> [UInt8] {
        switch version {
        case .v1:
            DigestState.hmac(algorithm.digestKind, key: key, message: message)
        case .v2:
            Array(DigestState.hmac(.sha512, key: key, message: message).prefix(32))
        }
    }
}
