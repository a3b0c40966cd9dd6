import Base64URL

/// The kinds of handle the engine makes and their readable prefixes (API.md, Conventions).
/// A handle is the prefix plus 128 random bits in base64url without padding.
public enum HandleKind: String, Sendable, CaseIterable {
    /// An instance (`PEERDIST_INSTANCE_HANDLE`).
    case instance = "inst_"
    /// A completion port.
    case port = "port_"
    /// A publication stream (`PEERDIST_STREAM_HANDLE`).
    case stream = "strm_"
    /// A content-information reader (`PEERDIST_CONTENTINFO_HANDLE`).
    case contentInfo = "cinf_"
    /// A retrieval (`PEERDIST_CONTENT_HANDLE`, PeerDistClientOpenContent).
    case retrieval = "retr_"
    /// A server-made operation id.
    case operation = "op_"

    /// The prefix.
    public var prefix: String { rawValue }

    /// A new unguessable handle of this kind.
    func make() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8]()
        bytes.reserveCapacity(16)
        for _ in 0..<2 {
            var word = generator.next() as UInt64
            for _ in 0..<8 {
                bytes.append(UInt8(truncatingIfNeeded: word))
                word >>= 8
            }
        }
        return prefix + Base64URL.encode(bytes)
    }
}
