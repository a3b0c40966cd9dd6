internal import Crypto

/// The running state of one of the hash functions used by MS-PCCRC.
///
/// Safety (`@unchecked Sendable`): swift-crypto's digest structs are not marked `Sendable`, but
/// they are values with copy-on-write storage (`isKnownUniquelyReferenced` before every
/// mutation, atomic reference counts), so a copy sent to another thread never shares mutable
/// state with the original. No lock or queue is needed.
enum DigestState: @unchecked Sendable {
    /// Which function to run.
    enum Kind: Sendable {
        case sha256, sha384, sha512
    }

    case sha256(SHA256)
    case sha384(SHA384)
    case sha512(SHA512)
    /// Transient placeholder used while the payload is mutated in place (keeps it uniquely referenced).
    case moved

    // MARK: - Init

    init(_ kind: Kind) {
        switch kind {
        case .sha256: self = .sha256(SHA256())
        case .sha384: self = .sha384(SHA384())
        case .sha512: self = .sha512(SHA512())
        }
    }

    // MARK: - API

    /// Feeds bytes. Setting `.moved` first drops the enum's reference so the digest's
    /// storage stays uniquely referenced and is not copied on every call.
    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        switch self {
        case .sha256(var h):
            self = .moved
            h.update(bufferPointer: bytes)
            self = .sha256(h)
        case .sha384(var h):
            self = .moved
            h.update(bufferPointer: bytes)
            self = .sha384(h)
        case .sha512(var h):
            self = .moved
            h.update(bufferPointer: bytes)
            self = .sha512(h)
        case .moved:
            preconditionFailure("DigestState used while moved")
        }
    }

    /// The full digest of everything fed so far (the state itself is left unchanged).
    func finalize() -> [UInt8] {
        switch self {
        case .sha256(let h): h.finalize().withUnsafeBytes { Array($0) }
        case .sha384(let h): h.finalize().withUnsafeBytes { Array($0) }
        case .sha512(let h): h.finalize().withUnsafeBytes { Array($0) }
        case .moved: preconditionFailure("DigestState used while moved")
        }
    }

    /// One-shot digest of `bytes`.
    static func hash(_ kind: Kind, _ bytes: [UInt8]) -> [UInt8] {
        switch kind {
        case .sha256: SHA256.hash(data: bytes).withUnsafeBytes { Array($0) }
        case .sha384: SHA384.hash(data: bytes).withUnsafeBytes { Array($0) }
        case .sha512: SHA512.hash(data: bytes).withUnsafeBytes { Array($0) }
        }
    }

    /// One-shot HMAC of `message` under `key`, full length.
    static func hmac(_ kind: Kind, key: [UInt8], message: [UInt8]) -> [UInt8] {
        let symmetricKey = SymmetricKey(data: key)
        switch kind {
        case .sha256:
            return HMAC<SHA256>.authenticationCode(for: message, using: symmetricKey).withUnsafeBytes { Array($0) }
        case .sha384:
            return HMAC<SHA384>.authenticationCode(for: message, using: symmetricKey).withUnsafeBytes { Array($0) }
        case .sha512:
            return HMAC<SHA512>.authenticationCode(for: message, using: symmetricKey).withUnsafeBytes { Array($0) }
        }
    }
}

extension V1HashAlgorithm {
    /// The digest function behind this CALG id.
    var digestKind: DigestState.Kind {
        switch self {
        case .sha256: .sha256
        case .sha384: .sha384
        case .sha512: .sha512
        }
    }
}
