/// Streaming hasher for one content: feed bytes in any slicing, the result is identical.
/// Memory is bounded: V1 keeps only digests; V2 keeps at most one segment (<= 128 KiB) of bytes.
///
/// In fact V2 keeps no content bytes either: a segment's bytes are fed to a running SHA-512 as
/// they arrive, and `ContentDefinedChunker` only looks backwards, so no look-ahead is needed.
public struct ContentHasher: Sendable {
    // MARK: - Properties

    private enum Engine: Sendable {
        case v1(V1Hasher)
        case v2(V2Hasher)
        case finished(ContentHashes)
        case moved
    }

    /// Content information version being computed.
    public let version: PCCRCVersion
    /// V1 hash algorithm (`.sha256` for version 2.0).
    public let algorithm: V1HashAlgorithm
    /// Bytes fed so far.
    public private(set) var bytesHashed: UInt64 = 0
    private var engine: Engine

    // MARK: - Init

    /// Creates a hasher for one content.
    /// - Parameters:
    ///   - version: Content information version.
    ///   - algorithm: V1 hash algorithm; ignored (stored as `.sha256`) for version 2.0.
    public init(version: PCCRCVersion, algorithm: V1HashAlgorithm = .sha256) {
        self.version = version
        switch version {
        case .v1:
            self.algorithm = algorithm
            engine = .v1(V1Hasher(algorithm: algorithm))
        case .v2:
            self.algorithm = .sha256
            engine = .v2(V2Hasher())
        }
    }

    // MARK: - API

    /// Feeds the next bytes of the content.
    /// - Parameter bytes: Any number of bytes (empty is fine). Must not be called after `finalize()`.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty else { return }
        bytesHashed += UInt64(bytes.count)
        // `.moved` keeps the engine's storage uniquely referenced while it is mutated.
        switch engine {
        case .v1(var hasher):
            engine = .moved
            hasher.update(bytes)
            engine = .v1(hasher)
        case .v2(var hasher):
            engine = .moved
            hasher.update(bytes)
            engine = .v2(hasher)
        case .finished:
            preconditionFailure("ContentHasher.update called after finalize()")
        case .moved:
            preconditionFailure("ContentHasher engine used while moved")
        }
    }

    /// Feeds the next bytes of the content.
    /// - Parameter bytes: Any number of bytes (empty is fine). Must not be called after `finalize()`.
    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// Ends the content and returns its digests. Call once; a second call returns the same value.
    /// - Returns: The per-segment digests; no segments for empty content.
    public mutating func finalize() -> ContentHashes {
        let segments: [SegmentHashes]
        switch engine {
        case .v1(var hasher):
            engine = .moved
            segments = hasher.finalize()
        case .v2(var hasher):
            engine = .moved
            segments = hasher.finalize()
        case .finished(let hashes):
            return hashes
        case .moved:
            preconditionFailure("ContentHasher engine used while moved")
        }
        let hashes = ContentHashes(
            version: version, algorithm: algorithm, contentLength: bytesHashed, segments: segments)
        engine = .finished(hashes)
        return hashes
    }
}
