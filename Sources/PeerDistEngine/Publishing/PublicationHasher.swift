import PCCRC

/// The hashing state of one publication stream: V1 always, V2 too for a version-2 publication, both
/// fed in one pass over the bytes. A value type (copying it snapshots the state), so an append that
/// is cancelled or fails is rolled back by restoring the copy taken before it.
struct PublicationHasher: Sendable {
    // MARK: - Properties

    private var v1: ContentHasher
    private var v2: ContentHasher?

    /// Bytes fed so far.
    var bytesHashed: UInt64 { v1.bytesHashed }

    // MARK: - Init

    /// - Parameters:
    ///   - version: 1 (V1 content information only) or 2 (V1 and V2).
    ///   - algorithm: the V1 hash.
    init(version: Int, algorithm: V1HashAlgorithm = .sha256) {
        v1 = ContentHasher(version: .v1, algorithm: algorithm)
        v2 = version >= 2 ? ContentHasher(version: .v2) : nil
    }

    // MARK: - API

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        v1.update(bytes)
        v2?.update(bytes)
    }

    /// The digests of everything fed so far; the receiver is left unchanged (finalizes a copy).
    func finalized() -> PublishedHashes {
        var v1Copy = v1
        var v2Copy = v2
        return PublishedHashes(v1: v1Copy.finalize(), v2: v2Copy?.finalize())
    }
}

/// The digests a publication keeps (no content bytes).
struct PublishedHashes: Sendable {
    let v1: ContentHashes
    let v2: ContentHashes?

    var length: UInt64 { v1.contentLength }
    var versions: [Int] { v2 == nil ? [1] : [1, 2] }

    func hashes(version: Int) -> ContentHashes? {
        switch version {
        case 1: return v1
        case 2: return v2
        default: return nil
        }
    }
}
