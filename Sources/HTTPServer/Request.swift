import HTTPWire

/// A request as a handler sees it: the parsed head, decoded path parameters, the query and the body.
public struct Request: Sendable {
    /// The parsed request head (method, target, version, fields).
    public let head: RequestHead
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
    /// When the head was parsed.
    public let receivedAt: ContinuousClock.Instant

    /// The method.
    public var method: HTTPMethod { head.method }
    /// The header fields.
    public var headers: HTTPFields { head.fields }

    init(head: RequestHead, connectionID: UInt64) {
        self.head = head
        self.connectionID = connectionID
        self.receivedAt = .now
        let target = Self.originForm(head.target)
        if let q = target.utf8.firstIndex(of: UInt8(ascii: "?")) {
            path = target[..<q]
            query = target[target.index(after: q)...]
        } else {
            path = target
            query = nil
        }
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
