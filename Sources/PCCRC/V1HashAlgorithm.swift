/// V1 hash algorithm ids (Windows CALG ids as in dwHashAlgo).
///
/// MS-PCCRC §2.3: the field `dwHashAlgo` holds the Windows `CALG_SHA_256`, `CALG_SHA_384` or
/// `CALG_SHA_512` identifier. Version 2.0 content information always uses truncated SHA-512
/// and ignores this type.
public enum V1HashAlgorithm: UInt32, Sendable, Hashable {
    /// SHA-256 (`CALG_SHA_256`, 0x800C); the Windows default, 32-byte digests.
    case sha256 = 0x800C
    /// SHA-384 (`CALG_SHA_384`, 0x800D); 48-byte digests.
    case sha384 = 0x800D
    /// SHA-512 (`CALG_SHA_512`, 0x800E); 64-byte digests.
    case sha512 = 0x800E

    /// Size in bytes of one digest (block hash, HoD, Kp, HoHoDk) for this algorithm.
    public var digestSize: Int {
        switch self {
        case .sha256: 32
        case .sha384: 48
        case .sha512: 64
        }
    }
}
