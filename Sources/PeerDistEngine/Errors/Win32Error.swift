/// A Win32 error code as the PeerDist API reports it: the number and its symbolic name.
///
/// The HTTP layer maps `code` to an HTTP status (see API.md, "Error codes and their HTTP status");
/// the engine only chooses the code. Equality and hashing use `code` alone.
public struct Win32Error: Sendable, Hashable, CustomStringConvertible {
    // MARK: - Properties

    /// The numeric Win32 code (`DWORD`).
    public let code: UInt32
    /// The symbolic name, e.g. `ERROR_INVALID_HANDLE`.
    public let name: String

    // MARK: - Init

    /// Creates an error value from a number and a name.
    /// - Parameters:
    ///   - code: The Win32 number.
    ///   - name: Its symbolic name.
    public init(code: UInt32, name: String) {
        self.code = code
        self.name = name
    }

    /// The known error with this number, or a value named `WIN32_ERROR_<code>` when it is not one of
    /// the codes this service uses.
    /// - Parameter code: The Win32 number.
    public init(code: UInt32) {
        self = Win32Error.known[code] ?? Win32Error(code: code, name: "WIN32_ERROR_\(code)")
    }

    // MARK: - API

    /// `true` for `ERROR_SUCCESS`.
    public var isSuccess: Bool { code == 0 }

    /// `name (code)`.
    public var description: String { "\(name) (\(code))" }

    /// Equality by code only.
    public static func == (lhs: Win32Error, rhs: Win32Error) -> Bool { lhs.code == rhs.code }

    /// Hashes the code only.
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    // MARK: - Known codes

    /// 0: success.
    public static let success = Win32Error(code: 0, name: "ERROR_SUCCESS")
    /// 5: access denied (401 and non-policy 403 at the HTTP level).
    public static let accessDenied = Win32Error(code: 5, name: "ERROR_ACCESS_DENIED")
    /// 6: unknown, closed or foreign handle (HTTP 404).
    public static let invalidHandle = Win32Error(code: 6, name: "ERROR_INVALID_HANDLE")
    /// 50: not supported (HTTP 405, 501, 505).
    public static let notSupported = Win32Error(code: 50, name: "ERROR_NOT_SUPPORTED")
    /// 87: malformed parameter (HTTP 400).
    public static let invalidParameter = Win32Error(code: 87, name: "ERROR_INVALID_PARAMETER")
    /// 735: given to callers waiting on a completion port when it closes (HTTP 410).
    public static let abandonedWait0 = Win32Error(code: 735, name: "ERROR_ABANDONED_WAIT_0")
    /// 995: the result of a canceled or aborted operation.
    public static let operationAborted = Win32Error(code: 995, name: "ERROR_OPERATION_ABORTED")
    /// 996: the result of a still-pending operation.
    public static let ioIncomplete = Win32Error(code: 996, name: "ERROR_IO_INCOMPLETE")
    /// 997: an asynchronous call was accepted (HTTP 202).
    public static let ioPending = Win32Error(code: 997, name: "ERROR_IO_PENDING")
    /// 1168: content not published (HTTP 404).
    public static let notFound = Win32Error(code: 1168, name: "ERROR_NOT_FOUND")
    /// 1260: PeerDist disabled by policy (HTTP 403).
    public static let accessDisabledByPolicy = Win32Error(code: 1260, name: "ERROR_ACCESS_DISABLED_BY_POLICY")
    /// 1460: a read timed out (operation result); HTTP 408 at the HTTP level.
    public static let timeout = Win32Error(code: 1460, name: "ERROR_TIMEOUT")
    /// 1931: an ended read's buffer was released to keep its instance within its bound (HTTP 410).
    public static let contextExpired = Win32Error(code: 1931, name: "ERROR_CONTEXT_EXPIRED")
    /// 1816: a bound of the engine was reached (HTTP 429 with `Retry-After`).
    public static let notEnoughQuota = Win32Error(code: 1816, name: "ERROR_NOT_ENOUGH_QUOTA")
    /// 4050: content information version not supported (HTTP 400).
    public static let contentInfoVersionUnsupported = Win32Error(
        code: 4050, name: "PEERDIST_ERROR_CONTENTINFO_VERSION_UNSUPPORTED")
    /// 4051: content information cannot be parsed (HTTP 422).
    public static let cannotParseContentInfo = Win32Error(code: 4051, name: "PEERDIST_ERROR_CANNOT_PARSE_CONTENTINFO")
    /// 4052: data missing from the caches (operation result).
    public static let missingData = Win32Error(code: 4052, name: "PEERDIST_ERROR_MISSING_DATA")
    /// 4053: no more data (operation result, e.g. end of content information).
    public static let noMore = Win32Error(code: 4053, name: "PEERDIST_ERROR_NO_MORE")
    /// 4054: object not initialised (HTTP 404).
    public static let notInitialized = Win32Error(code: 4054, name: "PEERDIST_ERROR_NOT_INITIALIZED")
    /// 4055: object already initialised (HTTP 409).
    public static let alreadyInitialized = Win32Error(code: 4055, name: "PEERDIST_ERROR_ALREADY_INITIALIZED")
    /// 4056: shutdown in progress (HTTP 409).
    public static let shutdownInProgress = Win32Error(code: 4056, name: "PEERDIST_ERROR_SHUTDOWN_IN_PROGRESS")
    /// 4057: handle invalidated by a status change (HTTP 410).
    public static let invalidated = Win32Error(code: 4057, name: "PEERDIST_ERROR_INVALIDATED")
    /// 4058: already exists (HTTP 409).
    public static let alreadyExists = Win32Error(code: 4058, name: "PEERDIST_ERROR_ALREADY_EXISTS")
    /// 4059: no pending operation with that id for that content (HTTP 404). The Windows header
    /// spells it `PEERDIST_ERROR_OPERATION_NOTFOUND`; the service uses the documented spelling.
    public static let operationNotFound = Win32Error(code: 4059, name: "PEERDIST_ERROR_OPERATION_NOT_FOUND")
    /// 4060: already completed (HTTP 409).
    public static let alreadyCompleted = Win32Error(code: 4060, name: "PEERDIST_ERROR_ALREADY_COMPLETED")
    /// 4061: range outside the content (HTTP 416).
    public static let outOfBounds = Win32Error(code: 4061, name: "PEERDIST_ERROR_OUT_OF_BOUNDS")
    /// 4062: API version not supported (HTTP 400).
    public static let versionUnsupported = Win32Error(code: 4062, name: "PEERDIST_ERROR_VERSION_UNSUPPORTED")
    /// 4063: invalid configuration (HTTP 500).
    public static let invalidConfiguration = Win32Error(code: 4063, name: "PEERDIST_ERROR_INVALID_CONFIGURATION")
    /// 4064: not licensed (HTTP 403).
    public static let notLicensed = Win32Error(code: 4064, name: "PEERDIST_ERROR_NOT_LICENSED")
    /// 4065: service unavailable (HTTP 503 with `Retry-After`).
    public static let serviceUnavailable = Win32Error(code: 4065, name: "PEERDIST_ERROR_SERVICE_UNAVAILABLE")
    /// 4066: trust failure (HTTP 403).
    public static let trustFailure = Win32Error(code: 4066, name: "PEERDIST_ERROR_TRUST_FAILURE")

    /// Every code above, in numeric order.
    public static let allKnown: [Win32Error] = [
        .success, .accessDenied, .invalidHandle, .notSupported, .invalidParameter, .abandonedWait0,
        .operationAborted, .ioIncomplete, .ioPending, .notFound, .accessDisabledByPolicy, .timeout,
        .notEnoughQuota, .contextExpired, .contentInfoVersionUnsupported, .cannotParseContentInfo, .missingData, .noMore,
        .notInitialized, .alreadyInitialized, .shutdownInProgress, .invalidated, .alreadyExists,
        .operationNotFound, .alreadyCompleted, .outOfBounds, .versionUnsupported, .invalidConfiguration,
        .notLicensed, .serviceUnavailable, .trustFailure,
    ]

    private static let known: [UInt32: Win32Error] = Dictionary(
        uniqueKeysWithValues: allKnown.map { ($0.code, $0) })
}
