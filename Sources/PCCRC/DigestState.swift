internal import Crypto

/// The running state of one of the hash functions used by MS-PCCRC.
///
/// A struct of three optionals rather than an enum of three digests: an enum with several
/// single-reference payloads keeps its case in the spare (high) bits of the reference (SHA-512's
/// context is stored as `pointer | 1 << 63`), which LeakSanitizer does not see as a pointer. Every
/// live SHA-384 or SHA-512 context then looked leaked to it. An optional keeps the plain pointer.
///
/// Safety (`@unchecked Sendable`): swift-crypto's digest structs are not marked `Sendable`, but
/// they are values with copy-on-write storage (`isKnownUniquelyReferenced` before every
/// mutation, atomic reference counts), so a copy sent to another thread never shares mutable
/// state with the original. No lock or queue is needed.
struct DigestState: @unchecked Sendable {
    /// Which function to run.
    enum Kind: Sendable {
        case sha256, sha384, sha512
    }

    // Exactly one is set, from `init` on.
    private var sha256: SHA256?
    private var sha384: SHA384?
    private var sha512: SHA512?

    // MARK: - Init

    init(_ kind: Kind) {
        switch kind {
        case .sha256: sha256 = SHA256()
        case .sha384: sha384 = SHA384()
        case .sha512: sha512 = SHA512()
        }
    }

    // MARK: - API

    /// Feeds bytes (in place: `x!.update` mutates the optional's payload, which stays uniquely
    /// referenced, so the digest's storage is not copied on every call).
    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        if sha256 != nil {
            sha256!.update(bufferPointer: bytes)
        } else if sha384 != nil {
            sha384!.update(bufferPointer: bytes)
        } else if sha512 != nil {
            sha512!.update(bufferPointer: bytes)
        }
    }

    /// The full digest of everything fed so far (the state itself is left unchanged).
    func finalize() -> [UInt8] {
        if let h = sha256 { return h.finalize().withUnsafeBytes { Array($0) } }
        if let h = sha384 { return h.finalize().withUnsafeBytes { Array($0) } }
        if let h = sha512 { return h.finalize().withUnsafeBytes { Array($0) } }
        preconditionFailure("DigestState holds no digest")
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
