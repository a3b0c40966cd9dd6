import HTTPWire

/// An error with everything needed to render it as problem+json (RFC 9457) with the Win32
/// `code` and `error` members the contract requires. The one error type the server renders itself.
public struct HTTPError: Error, Sendable {
    /// HTTP status.
    public var status: Int
    /// The Win32 code number.
    public var code: Int
    /// The Win32 symbolic name.
    public var name: String
    /// A short human title; defaults to the reason phrase.
    public var title: String?
    /// What went wrong, for this request.
    public var detail: String
    /// Extra response fields (`Allow`, `Retry-After`, …).
    public var headers: HTTPFields
    /// Whether the connection must close after the answer (the stream can't be trusted).
    public var closeConnection: Bool

    /// Creates an error.
    public init(status: Int, code: Int, name: String, title: String? = nil, detail: String,
                headers: HTTPFields = HTTPFields(), closeConnection: Bool = false) {
        self.status = status
        self.code = code
        self.name = name
        self.title = title
        self.detail = detail
        self.headers = headers
        self.closeConnection = closeConnection
    }

    /// An HTTP-level error with the Win32 code the contract assigns to its status
    /// (API.md "Errors that come from HTTP itself").
    public static func http(_ status: Int, _ detail: String, headers: HTTPFields = HTTPFields(), closeConnection: Bool = false) -> HTTPError {
        let (code, name) = Self.win32(forHTTPStatus: status)
        return HTTPError(status: status, code: code, name: name, detail: detail, headers: headers, closeConnection: closeConnection)
    }

    /// The Win32 code of an error that comes from HTTP itself.
    public static func win32(forHTTPStatus status: Int) -> (Int, String) {
        switch status {
        case 405, 501, 505: (50, "ERROR_NOT_SUPPORTED")
        case 408: (1460, "ERROR_TIMEOUT")
        case 401, 403, 421: (5, "ERROR_ACCESS_DENIED")
        case 429: (1816, "ERROR_NOT_ENOUGH_QUOTA")
        case 503: (4065, "PEERDIST_ERROR_SERVICE_UNAVAILABLE")
        case 500: (1359, "ERROR_INTERNAL_ERROR")
        default: (87, "ERROR_INVALID_PARAMETER")
        }
    }

    /// The error a parser failure answers with; the connection always closes after it.
    public static func from(_ error: HTTP1ParseError) -> HTTPError {
        .http(error.status, error.detail, closeConnection: true)
    }
}
