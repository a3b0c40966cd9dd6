/// Why a request could not be parsed. Each case carries the HTTP status to answer with;
/// after any of them the connection is closed once the answer is written.
public enum HTTP1ParseError: Error, Hashable, Sendable {
    /// Malformed syntax or a smuggling attempt (400).
    case badRequest(String)
    /// Head larger than the limit (431).
    case headTooLarge
    /// Too many header fields (431).
    case tooManyFields
    /// Trailer section too large (431).
    case trailersTooLarge
    /// Request-target longer than the limit (414).
    case targetTooLong
    /// An HTTP version other than 1.0 or 1.1 (505).
    case unsupportedVersion(String)
    /// A transfer coding other than chunked (501).
    case unsupportedTransferCoding(String)
    /// An expectation other than 100-continue (417).
    case expectationFailed(String)

    /// The HTTP status code for this error.
    public var status: Int {
        switch self {
        case .badRequest: 400
        case .headTooLarge, .tooManyFields, .trailersTooLarge: 431
        case .targetTooLong: 414
        case .unsupportedVersion: 505
        case .unsupportedTransferCoding: 501
        case .expectationFailed: 417
        }
    }

    /// A human-readable explanation, safe to send to the client.
    public var detail: String {
        switch self {
        case .badRequest(let why): why
        case .headTooLarge: "request head exceeds the size limit"
        case .tooManyFields: "too many header fields"
        case .trailersTooLarge: "chunked trailer section exceeds the size limit"
        case .targetTooLong: "request-target exceeds the length limit"
        case .unsupportedVersion(let v): "HTTP version '\(v)' is not supported"
        case .unsupportedTransferCoding(let c): "transfer coding '\(c)' is not implemented"
        case .expectationFailed(let e): "expectation '\(e)' cannot be met"
        }
    }
}
