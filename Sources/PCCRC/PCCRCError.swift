/// Errors thrown while building or parsing MS-PCCRC content information.
public enum PCCRCError: Error, Sendable, Equatable {
    /// Malformed content information: truncated, inconsistent or with trailing bytes.
    /// Maps to Win32 `PEERDIST_ERROR_CANNOT_PARSE_CONTENTINFO` (4051). The string says what was wrong.
    case cannotParse(String)
    /// Unknown version or hash algorithm. Maps to `PEERDIST_ERROR_CONTENTINFO_VERSION_UNSUPPORTED` (4050).
    case versionUnsupported
    /// The requested range is empty (with a non-zero offset) or leaves the content.
    case rangeOutOfBounds
}
