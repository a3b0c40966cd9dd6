/// What a publication keeps (no content bytes): per-segment digests.
///
/// Produced by `ContentHasher.finalize()`; `ContentInformation.encode(_:secret:offset:length:)`
/// turns it into content information for any range. Keys (`Kp`) are not stored: they depend on
/// the server secret and are derived at encoding time.
public struct ContentHashes: Sendable, Equatable {
    /// Content information version these digests were computed for.
    public let version: PCCRCVersion
    /// V1 hash algorithm; `.sha256` (unused) for version 2.0.
    public let algorithm: V1HashAlgorithm
    /// Total content length in bytes (the sum of the segment lengths).
    public let contentLength: UInt64
    /// Segments in content order; empty for empty content.
    public let segments: [SegmentHashes]

    /// Creates a value from already computed digests (for example ones loaded from storage).
    /// No validation is done here; `ContentInformation.encode` checks what it needs.
    /// - Parameters:
    ///   - version: Content information version.
    ///   - algorithm: V1 hash algorithm (pass `.sha256` for version 2.0).
    ///   - contentLength: Total content length.
    ///   - segments: Segments in content order.
    public init(version: PCCRCVersion, algorithm: V1HashAlgorithm, contentLength: UInt64, segments: [SegmentHashes]) {
        self.version = version
        self.algorithm = algorithm
        self.contentLength = contentLength
        self.segments = segments
    }

    /// Hashes a whole in-memory content in one call (convenience over `ContentHasher`).
    /// - Parameters:
    ///   - bytes: The content.
    ///   - version: Content information version.
    ///   - algorithm: V1 hash algorithm; ignored for version 2.0.
    /// - Returns: The per-segment digests.
    public static func hashing(
        _ bytes: [UInt8], version: PCCRCVersion, algorithm: V1HashAlgorithm = .sha256
    ) -> ContentHashes {
        var hasher = ContentHasher(version: version, algorithm: algorithm)
        hasher.update(bytes)
        return hasher.finalize()
    }

    /// The public segment IDs (`HoHoDk`) of every segment under `secret`, in content order.
    /// - Parameter secret: The server secret.
    /// - Returns: One ID per segment.
    public func segmentIDs(secret: ServerSecret) -> [[UInt8]] {
        let ks = version == .v1 ? secret.ksV1(algorithm) : secret.ksV2
        return segments.map { segment in
            let kp = SegmentKeys.segmentSecret(version: version, algorithm: algorithm, ks: ks, hashOfData: segment.hashOfData)
            return SegmentKeys.segmentID(version: version, algorithm: algorithm, kp: kp, hashOfData: segment.hashOfData)
        }
    }
}
