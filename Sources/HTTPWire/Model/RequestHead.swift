/// How a request's body is delimited (RFC 9112 §6.3).
public enum BodyFraming: Hashable, Sendable {
    /// No body (no Content-Length, no Transfer-Encoding).
    case none
    /// Exactly this many bytes.
    case length(UInt64)
    /// The chunked transfer coding.
    case chunked
}

/// A parsed request line and header section.
public struct RequestHead: Sendable {
    /// The method.
    public var method: HTTPMethod
    /// The request-target exactly as sent (origin-form: path and optional query).
    public var target: String
    /// The protocol version.
    public var version: HTTPVersion
    /// The header fields in order, duplicates kept.
    public var fields: HTTPFields
    /// How the body is framed.
    public var framing: BodyFraming
    /// Whether the connection may be reused after this exchange (RFC 9112 §9.3).
    public var keepAlive: Bool
    /// Whether the client sent `Expect: 100-continue`.
    public var expectsContinue: Bool
    /// Whether the client accepts a gzip-coded response (Accept-Encoding).
    public var acceptsGzip: Bool
    /// Whether Accept-Encoding was malformed, and so ignored: it only negotiates an optional
    /// coding, so the answer uses the identity coding instead of refusing the request (as nginx
    /// and Apache do). Framing fields stay strict.
    public var acceptEncodingMalformed: Bool

    /// Creates a head; used by tests and by the parser.
    public init(
        method: HTTPMethod, target: String, version: HTTPVersion = .http1_1, fields: HTTPFields = HTTPFields(),
        framing: BodyFraming = .none, keepAlive: Bool = true, expectsContinue: Bool = false,
        acceptsGzip: Bool = false, acceptEncodingMalformed: Bool = false
    ) {
        self.method = method
        self.target = target
        self.version = version
        self.fields = fields
        self.framing = framing
        self.keepAlive = keepAlive
        self.expectsContinue = expectsContinue
        self.acceptsGzip = acceptsGzip
        self.acceptEncodingMalformed = acceptEncodingMalformed
    }
}
