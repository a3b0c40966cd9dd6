/// The one error type of the engine: a Win32 code, a human-readable detail and, for
/// `ERROR_NOT_ENOUGH_QUOTA` (1816) and `PEERDIST_ERROR_SERVICE_UNAVAILABLE` (4065), how many seconds
/// the caller should wait before trying again (`Retry-After`).
///
/// `detail` is written for clients (it names the parameter or bound at fault, never internals).
public struct EngineError: Error, Sendable, Hashable, CustomStringConvertible {
    // MARK: - Properties

    /// The Win32 code; the HTTP layer derives the status from it.
    public let code: Win32Error
    /// What went wrong, for the problem+json `detail`.
    public let detail: String
    /// Seconds to wait before retrying, when the condition is temporary.
    public let retryAfterSeconds: Int?
    /// The call was refused because of the size of the data it carries or declares (an
    /// `ERROR_INVALID_PARAMETER` that HTTP states truer as 413 Content Too Large).
    public let isTooLarge: Bool

    // MARK: - Init

    /// Creates an error.
    /// - Parameters:
    ///   - code: The Win32 code.
    ///   - detail: A client-facing explanation.
    ///   - retryAfterSeconds: Seconds before a retry may succeed, if any.
    ///   - isTooLarge: Whether the size of the data the call carries or declares is at fault.
    public init(_ code: Win32Error, _ detail: String, retryAfterSeconds: Int? = nil, isTooLarge: Bool = false) {
        self.code = code
        self.detail = detail
        self.retryAfterSeconds = retryAfterSeconds
        self.isTooLarge = isTooLarge
    }

    // MARK: - API

    /// `name (code): detail`.
    public var description: String { "\(code): \(detail)" }

    // MARK: - Common errors

    static func invalidParameter(_ detail: String) -> EngineError { EngineError(.invalidParameter, detail) }
    static func tooLarge(_ detail: String) -> EngineError { EngineError(.invalidParameter, detail, isTooLarge: true) }
    static func invalidHandle(_ what: String) -> EngineError {
        EngineError(.invalidHandle, "unknown or closed \(what) handle")
    }
    static func quota(_ detail: String, retryAfterSeconds: Int) -> EngineError {
        EngineError(.notEnoughQuota, detail, retryAfterSeconds: retryAfterSeconds)
    }
    static let waitCancelled = EngineError(.operationAborted, "the waiting task was cancelled")
}
