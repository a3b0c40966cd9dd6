/// Version of an MS-PCCRC content information structure (MS-PCCRC §2.3 and §2.4).
public enum PCCRCVersion: Int, Sendable, Hashable, Codable {
    /// Version 1.0: 32 MiB segments of 64 KiB blocks, SHA-256/384/512, little-endian layout.
    case v1 = 1
    /// Version 2.0: variable segments of 1 to 128 KiB, truncated SHA-512, big-endian layout.
    case v2 = 2
}
