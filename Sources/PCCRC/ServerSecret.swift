/// The server secret key: an arbitrary byte string, as configured on a Windows server
/// (`netsh branchcache set key`) or generated once and kept by the service.
///
/// MS-PCCRC §2.2: content information never carries the key itself, only `Ks` derived from it
/// (`ksV1(_:)`, `ksV2`) and then `Kp = HMAC(Ks, HoD)` per segment.
public struct ServerSecret: Sendable {
    // MARK: - Properties

    /// The raw key bytes (never disclosed to clients).
    public let keyBytes: [UInt8]

    // MARK: - Init

    /// Creates a secret from raw key bytes.
    /// - Parameter keyBytes: Arbitrary byte string; Windows uses 32 random bytes.
    public init(keyBytes: [UInt8]) {
        self.keyBytes = keyBytes
    }

    /// Creates a fresh random secret from the system's cryptographic generator.
    /// - Parameter byteCount: Key length in bytes (32, as Windows, by default).
    /// - Returns: A new secret.
    public static func random(byteCount: Int = 32) -> ServerSecret {
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8]()
        bytes.reserveCapacity(byteCount)
        for _ in 0..<max(0, byteCount) {
            bytes.append(UInt8.random(in: .min ... .max, using: &generator))
        }
        return ServerSecret(keyBytes: bytes)
    }

    // MARK: - API

    /// `Ks` for version 1.0: `H(key)` with the content information's hash algorithm.
    /// - Parameter algorithm: The V1 hash algorithm (SHA-256 gives the Windows default).
    /// - Returns: `algorithm.digestSize` bytes.
    public func ksV1(_ algorithm: V1HashAlgorithm) -> [UInt8] {
        DigestState.hash(algorithm.digestKind, keyBytes)
    }

    /// `Ks` for version 2.0: the first 32 bytes of `SHA-512(key)`.
    public var ksV2: [UInt8] {
        Array(DigestState.hash(.sha512, keyBytes).prefix(32))
    }
}
