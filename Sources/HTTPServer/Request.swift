import HTTPWire

/// A request as a handler sees it, whatever protocol carried it: method, target, fields, decoded
/// path parameters, the query and the body. Framing and persistence stay with the protocol.
public struct Request: Sendable {
    /// The method.
    public let method: HTTPMethod
    /// The request-target as sent (for HTTP/2, the `:path`).
    public let target: String
    /// The protocol version (1.0, 1.1 or 2.0).
    public let version: HTTPVersion
    /// The header fields in order (for HTTP/2, `:authority` appears as `Host`).
    public let headers: HTTPFields
    /// Whether the client accepts a gzip-coded answer.
    public let acceptsGzip: Bool
    /// The path part of the target, still percent-encoded.
    public let path: Substring
    /// The query part of the target (after `?`), still encoded; nil when absent.
    public let query: Substring?
    /// Path parameters of the matched route template, percent-decoded.
    public internal(set) var parameters: [String: String] = [:]
    /// The route template that matched, e.g. `/instances/{h}` (for logs and metrics).
    public internal(set) var routeTemplate: String = ""
    /// The body: buffered bytes for routes that buffer, a stream for routes that stream.
    public internal(set) var body: RequestBody = .empty
    /// The connection's id, for logs.
    public let connectionID: UInt64
    /// The request id: the client's `X-Request-Id` when it is usable, else one the server made.
    /// Sent back in `X-Request-Id`.
    public internal(set) var id: String = ""
    /// Who sent the request, as an authentication filter established it (the name its credential
    /// stands for); nil when no filter named one.
    public var principal: String?
    /// Whether the request carries the server's administrative credential, as an authentication
    /// filter established it.
    public var isPrivileged: Bool = false
    /// When the head was parsed.
    public let receivedAt: ContinuousClock.Instant

    /// Creates a request from its parts (the protocol has checked them).
    package init(method: HTTPMethod, target: String, version: HTTPVersion, headers: HTTPFields, acceptsGzip: Bool, connectionID: UInt64,
                 receivedAt: ContinuousClock.Instant = .now) {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.acceptsGzip = acceptsGzip
        self.connectionID = connectionID
        self.receivedAt = receivedAt
        let target = Self.originForm(target)
        if let q = target.utf8.firstIndex(of: UInt8(ascii: "?")) {
            path = target[..<q]
            query = target[target.index(after: q)...]
        } else {
            path = target
            query = nil
        }
    }

    /// Creates a request from an HTTP/1.1 head.
    init(head: RequestHead, connectionID: UInt64, receivedAt: ContinuousClock.Instant = .now) {
        self.init(method: head.method, target: head.target, version: head.version, headers: head.fields,
                  acceptsGzip: head.acceptsGzip, connectionID: connectionID, receivedAt: receivedAt)
    }

    /// Creates a request for in-process tests.
    public init(head: RequestHead, parameters: [String: String] = [:], body: RequestBody = .empty) {
        self.init(head: head, connectionID: 0)
        self.parameters = parameters
        self.body = body
    }

    /// The client's request id if it is 1 to 128 visible ASCII characters, else nil.
    package static func usableRequestID(_ fields: HTTPFields) -> String? {
        guard let value = fields["X-Request-Id"], (1...128).contains(value.utf8.count),
              value.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
        return value
    }

    /// The absolute-form `http://host/path` reduced to its path (RFC 9112 §3.2.2).
    private static func originForm(_ target: String) -> Substring {
        let t = Substring(target)
        guard !t.hasPrefix("/"), t.hasPrefix("http://") || t.hasPrefix("https://"),
              let colon = t.firstIndex(of: ":") else { return t }
        let rest = t[t.index(colon, offsetBy: 3)...]
        guard let slash = rest.firstIndex(of: "/") else { return "/" }
        return rest[slash...]
    }

    /// The first value of a query parameter, percent-decoded (`+` is kept as is).
    /// - Returns: nil when absent; throws nothing: an undecodable value is returned raw.
    public func queryValue(_ name: String) -> String? {
        guard let query else { return nil }
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard PercentDecoding.decode(parts[0]) == name else { continue }
            let raw = parts.count > 1 ? parts[1] : ""
            return PercentDecoding.decode(raw) ?? String(raw)
        }
        return nil
    }
}
