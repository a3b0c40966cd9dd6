import HTTPWire

/// A request as a handler sees it, whatever protocol carried it: method, target, fields, decoded
/// path parameters, the query and the body. Framing and persistence stay with the protocol.
public struct Request: Sendable {
    /// The fields, in one reference-counted box: a request is copied into the exchange, the
    /// handler's closure and the filters, and each copy is one retain instead of one per field
    /// (and one value-witness call, `receivedAt`'s type being of resilient layout). Copied on
    /// write: only a uniquely referenced box is mutated.
    private final class Storage: @unchecked Sendable {
        // Safety: mutated only through `Request.unique()`, which copies a box that is shared.
        let method: HTTPMethod
        let target: String
        let version: HTTPVersion
        let headers: HTTPFields
        let acceptsGzip: Bool
        let acceptEncodingIgnored: Bool
        let path: Substring
        let query: Substring?
        let connectionID: UInt64
        let peerAddress: String?
        let receivedAt: ContinuousClock.Instant
        var parameters: [String: String] = [:]
        var routeTemplate = ""
        var body: RequestBody = .empty
        var id = ""
        var principal: String?
        var isPrivileged = false

        init(method: HTTPMethod, target: String, version: HTTPVersion, headers: HTTPFields, acceptsGzip: Bool, acceptEncodingIgnored: Bool,
             path: Substring, query: Substring?, connectionID: UInt64, peerAddress: String?, receivedAt: ContinuousClock.Instant) {
            self.method = method
            self.target = target
            self.version = version
            self.headers = headers
            self.acceptsGzip = acceptsGzip
            self.acceptEncodingIgnored = acceptEncodingIgnored
            self.path = path
            self.query = query
            self.connectionID = connectionID
            self.peerAddress = peerAddress
            self.receivedAt = receivedAt
        }

        func copy() -> Storage {
            let copy = Storage(method: method, target: target, version: version, headers: headers, acceptsGzip: acceptsGzip,
                               acceptEncodingIgnored: acceptEncodingIgnored, path: path, query: query, connectionID: connectionID, peerAddress: peerAddress, receivedAt: receivedAt)
            copy.parameters = parameters
            copy.routeTemplate = routeTemplate
            copy.body = body
            copy.id = id
            copy.principal = principal
            copy.isPrivileged = isPrivileged
            return copy
        }
    }

    private var storage: Storage

    private mutating func unique() -> Storage {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
        return storage
    }

    /// The method.
    public var method: HTTPMethod { storage.method }
    /// The request-target as sent (for HTTP/2, the `:path`).
    public var target: String { storage.target }
    /// The protocol version (1.0, 1.1 or 2.0).
    public var version: HTTPVersion { storage.version }
    /// The header fields in order (for HTTP/2, `:authority` appears as `Host`).
    public var headers: HTTPFields { storage.headers }
    /// Whether the client accepts a gzip-coded answer.
    public var acceptsGzip: Bool { storage.acceptsGzip }
    /// Whether a malformed Accept-Encoding was ignored (the answer uses the identity coding).
    public var acceptEncodingIgnored: Bool { storage.acceptEncodingIgnored }
    /// The path part of the target, still percent-encoded.
    public var path: Substring { storage.path }
    /// The query part of the target (after `?`), still encoded; nil when absent.
    public var query: Substring? { storage.query }
    /// Path parameters of the matched route template, percent-decoded.
    public internal(set) var parameters: [String: String] {
        get { storage.parameters }
        set { unique().parameters = newValue }
    }
    /// The route template that matched, e.g. `/instances/{h}` (for logs and metrics).
    public internal(set) var routeTemplate: String {
        get { storage.routeTemplate }
        set { unique().routeTemplate = newValue }
    }
    /// The body: buffered bytes for routes that buffer, a stream for routes that stream.
    public internal(set) var body: RequestBody {
        get { storage.body }
        set { unique().body = newValue }
    }
    /// The connection's id, for logs.
    public var connectionID: UInt64 { storage.connectionID }
    /// The client's numeric address without its port; nil when unknown.
    public var peerAddress: String? { storage.peerAddress }
    /// The request id: the client's `X-Request-Id` when it is usable, else one the server made.
    /// Sent back in `X-Request-Id`.
    public internal(set) var id: String {
        get { storage.id }
        set { unique().id = newValue }
    }
    /// Who sent the request, as an authentication filter established it (the name its credential
    /// stands for); nil when no filter named one.
    public var principal: String? {
        get { storage.principal }
        set { unique().principal = newValue }
    }
    /// Whether the request carries the server's administrative credential, as an authentication
    /// filter established it.
    public var isPrivileged: Bool {
        get { storage.isPrivileged }
        set { unique().isPrivileged = newValue }
    }
    /// When the head was parsed.
    public var receivedAt: ContinuousClock.Instant { storage.receivedAt }

    /// Creates a request from its parts (the protocol has checked them).
    package init(method: HTTPMethod, target: String, version: HTTPVersion, headers: HTTPFields, acceptsGzip: Bool,
                 acceptEncodingIgnored: Bool = false, connectionID: UInt64, peerAddress: String? = nil, receivedAt: ContinuousClock.Instant = .now) {
        let form = Self.originForm(target)
        let path: Substring
        let query: Substring?
        if let q = form.utf8.firstIndex(of: UInt8(ascii: "?")) {
            path = form[..<q]
            query = form[form.index(after: q)...]
        } else {
            path = form
            query = nil
        }
        storage = Storage(method: method, target: target, version: version, headers: headers, acceptsGzip: acceptsGzip,
                          acceptEncodingIgnored: acceptEncodingIgnored, path: path, query: query, connectionID: connectionID, peerAddress: peerAddress, receivedAt: receivedAt)
    }

    /// Creates a request from an HTTP/1.1 head.
    init(head: RequestHead, connectionID: UInt64, peerAddress: String? = nil, receivedAt: ContinuousClock.Instant = .now) {
        self.init(method: head.method, target: head.target, version: head.version, headers: head.fields,
                  acceptsGzip: head.acceptsGzip, acceptEncodingIgnored: head.acceptEncodingMalformed, connectionID: connectionID,
                  peerAddress: peerAddress, receivedAt: receivedAt)
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
