import HTTPServer
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Who may call what (API.md, Access): with a tokens file every request outside the open
/// endpoints carries `Authorization: Bearer <token>` and the token's name is the principal;
/// without one every caller is one principal. The admin token, once configured, guards `/admin/*`.
/// The tokens can be replaced while the server runs (SIGHUP); requests in flight keep the
/// principal they were given.
public final class AccessControl: Sendable {
    // MARK: - Constants

    /// The one principal of every caller while no tokens file is configured.
    public static let anonymousPrincipal = "default"
    /// The principal of a caller that presents the admin token while a tokens file is configured.
    /// Names in a tokens file cannot take it (`@` is not a name character).
    public static let adminPrincipal = "@admin"
    /// Paths answered without a token (API.md, Access): probes and scrapes.
    static let openPaths: Set<Substring> = ["/healthz", "/readyz", metricsPath]
    /// The scrape endpoint: open unless a metrics token is configured.
    static let metricsPath: Substring = "/metrics"
    /// The challenge of a 401 (RFC 6750 §3).
    static let realm = "peerdist"

    /// Why a token configuration was refused.
    public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    // MARK: - Properties

    private let tokens: Mutex<TokenTable?>
    private let adminDigest: [UInt8]?
    /// The digest of the token `/metrics` wants, when one is configured.
    private let metricsDigest: [UInt8]?
    /// While the service is open (no tokens file): the `Host` names answered besides loopback
    /// ones, lowercased; nil = any (`*`, or a tokens file is configured).
    private let allowedHosts: Set<String>?

    /// Whether requests must carry a token (a tokens file is configured).
    public var requiresTokens: Bool { tokens.withLock { $0 != nil } }
    /// Whether `/admin/*` wants the admin token.
    public var guardsAdmin: Bool { adminDigest != nil }
    /// Who may call `/admin/*`: the admin token's bearer; with a tokens file and no admin token,
    /// nobody (an authenticated principal must not switch the service off for all); open only
    /// while the whole service is open.
    public var adminAccess: AdminAccess {
        if guardsAdmin { return .adminToken }
        return requiresTokens ? .closed : .open
    }

    /// Who may call `/admin/*` (see `adminAccess`).
    public enum AdminAccess: String, Sendable {
        /// The admin token's bearer only.
        case adminToken = "admin token"
        /// Nobody: 403 to every caller (a tokens file and no admin token).
        case closed = "closed (a tokens file and no admin token: 403 to every caller)"
        /// Every caller (no tokens file, no admin token).
        case open
    }

    // MARK: - Init

    /// Creates the access rules.
    /// - Parameters:
    ///   - tokens: The callers' tokens; nil = open (every caller is `anonymousPrincipal`).
    ///   - adminToken: The token guarding `/admin/*`; nil = unguarded.
    ///   - metricsToken: The token `/metrics` wants (`--metrics-token`); nil = served to anyone.
    ///   - allowedHosts: While open (no tokens), the `Host` names served besides loopback names and
    ///     addresses (`--allowed-host`, any port); `*` serves every name. Others get 421, against
    ///     DNS rebinding: a web page must not reach an open service through the user's browser.
    /// - Throws: `ConfigurationError` when the admin or metrics token is malformed, the admin token
    ///   is shorter than a caller's token may be, or is also a caller's token.
    public init(tokens: TokenTable?, adminToken: String?, metricsToken: String? = nil, allowedHosts: [String] = [])
        throws(ConfigurationError)
    {
        if let adminToken, adminToken.utf8.count < TokenTable.minTokenBytes {
            throw ConfigurationError(description: "the admin token must be at least \(TokenTable.minTokenBytes) bytes, as callers' tokens are")
        }
        adminDigest = try Self.digest(of: adminToken, named: "admin")
        metricsDigest = try Self.digest(of: metricsToken, named: "metrics")
        self.tokens = Mutex(tokens)
        let names = allowedHosts.map { $0.lowercased() }
        self.allowedHosts = tokens != nil || names.contains("*") ? nil : Set(names)
        if let tokens { try check(tokens) }
    }

    // MARK: - API

    /// Replaces the callers' tokens (a reload). The old ones stay when the new ones are refused.
    /// - Returns: The principals the old table named and the new one does not (revoked).
    /// - Throws: `ConfigurationError` when a token of the new table is the admin token.
    @discardableResult
    public func replaceTokens(_ table: TokenTable) throws(ConfigurationError) -> Set<String> {
        try check(table)
        let old = tokens.withLock { tokens in
            defer { tokens = table }
            return tokens
        }
        return Set(old?.names ?? []).subtracting(table.names)
    }

    /// The authentication filter: sets `principal` and `isPrivileged` on every request, or
    /// refuses it with 401.
    public var filter: any ExchangeFilter { Filter(access: self) }

    /// A route's guard for `/admin/*` (`adminAccess`): passes when the service is open or the
    /// request carries the admin token.
    /// - Throws: 401 (with the Bearer challenge) when the request carries no token; 403 otherwise,
    ///   and 403 to every caller when a tokens file is configured without an admin token.
    func requireAdmin(_ request: Request) throws(HTTPError) {
        switch adminAccess {
        case .open:
            return
        case .closed:
            throw HTTPError.http(403, "no admin token is configured: /admin/* is closed while a tokens file is in use")
        case .adminToken:
            guard !request.isPrivileged else { return }
            if Self.bearerToken(request.headers) == nil {
                throw Self.unauthorized("the admin token is required", error: nil)
            }
            throw HTTPError.http(403, "this route wants the admin token")
        }
    }

    // MARK: - Private

    /// The digest of a configured token, nil when none is.
    /// - Throws: `ConfigurationError` naming the token when it is not an RFC 6750 token.
    private static func digest(of token: String?, named name: String) throws(ConfigurationError) -> [UInt8]? {
        guard let token else { return nil }
        guard TokenTable.isBearerToken(token.utf8) else {
            throw ConfigurationError(description: "the \(name) token must be of A-Z a-z 0-9 - . _ ~ + / with optional trailing '=' (RFC 6750)")
        }
        return TokenTable.digest(token.utf8)
    }

    private func check(_ table: TokenTable) throws(ConfigurationError) {
        if let adminDigest, table.principal(forDigest: adminDigest) != nil {
            throw ConfigurationError(description: "the admin token is also a caller's token in the tokens file")
        }
    }

    private func isAdmin(_ token: [UInt8]?) -> Bool {
        guard let adminDigest, let token else { return false }
        return TokenTable.constantTimeEquals(TokenTable.digest(token), adminDigest)
    }

    fileprivate func authenticate(_ request: inout Request) throws(HTTPError) {
        if let allowedHosts { try checkHost(request, allowed: allowedHosts) }
        if request.path == Self.metricsPath, let metricsDigest {
            // The scrape token, compared in fixed work as every token is; no other token passes.
            guard let presented = Self.bearerToken(request.headers),
                  TokenTable.constantTimeEquals(TokenTable.digest(presented), metricsDigest)
            else { throw Self.unauthorized("/metrics wants the metrics token", error: Self.bearerToken(request.headers) == nil ? nil : "invalid_token") }
            return
        }
        if Self.openPaths.contains(request.path) { return }
        let presented = Self.bearerToken(request.headers)
        request.isPrivileged = isAdmin(presented)
        guard let table = tokens.withLock({ $0 }) else {
            request.principal = Self.anonymousPrincipal
            return
        }
        if request.isPrivileged {
            request.principal = Self.adminPrincipal
            return
        }
        guard let presented else {
            throw Self.unauthorized("a bearer token is required", error: nil)
        }
        guard let name = table.principal(for: presented) else {
            throw Self.unauthorized("the bearer token is not valid", error: "invalid_token")
        }
        request.principal = name
    }

    /// While open: answers only a request whose `Host` (and absolute-form target's authority) is a
    /// loopback name or address or an allowed name, with any port. A request without a `Host`
    /// (HTTP/1.0, an HTTP/2 request without `:authority`) is served: browsers always send one.
    /// - Throws: 421 otherwise.
    private func checkHost(_ request: Request, allowed: Set<String>) throws(HTTPError) {
        var authorities = request.headers.values("Host")
        if let authority = Self.absoluteFormAuthority(request.target) { authorities.append(authority) }
        for authority in authorities {
            let host = Self.hostPart(authority)
            guard Self.isLoopback(host) || allowed.contains(host) else {
                throw HTTPError.http(421, "this service is open (no tokens file) and answers only requests for a loopback host "
                    + "or an --allowed-host name, not '\(authority.prefix(256))'")
            }
        }
    }

    /// The host of a `Host` value, lowercased, without its port and an IPv6 literal's brackets.
    static func hostPart(_ authority: String) -> String {
        var host = Substring(authority.lowercased())
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return String(host) }
            let rest = host[host.index(after: close)...]
            guard rest.isEmpty || (rest.hasPrefix(":") && rest.dropFirst().allSatisfy(Self.isDigit)) else { return String(host) }
            return String(host[host.index(after: host.startIndex)..<close])
        }
        if let colon = host.lastIndex(of: ":"), host.firstIndex(of: ":") == colon, host[host.index(after: colon)...].allSatisfy(Self.isDigit) {
            host = host[..<colon]
        }
        return String(host)
    }

    private static func isDigit(_ c: Character) -> Bool { c.isASCII && c.isNumber }

    /// The authority of an absolute-form request-target (`http://host:port/path`), else nil.
    private static func absoluteFormAuthority(_ target: String) -> String? {
        guard !target.hasPrefix("/"), let scheme = target.range(of: "://") else { return nil }
        let rest = target[scheme.upperBound...]
        return String(rest[..<(rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex)])
    }

    /// Whether a host (a bind address, or a request's `Host` without its port) reaches this host
    /// only: 127.0.0.0/8, ::1 (bracketed or not, or IPv4-mapped ::ffff:127.x.y.z), or `localhost`.
    public static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" || host == "::1" || host == "[::1]" { return true }
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 { return UInt32(bigEndian: v4.s_addr) >> 24 == 127 }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 {
            // ::1, or ::ffff:127.x.y.z (IPv4-mapped loopback).
            let b = withUnsafeBytes(of: v6) { Array($0) }
            if b[0..<15].allSatisfy({ $0 == 0 }) && b[15] == 1 { return true }
            return b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xFF && b[11] == 0xFF && b[12] == 127
        }
        return false
    }

    /// The token of the one `Authorization: Bearer <token>` field (scheme case-insensitive,
    /// RFC 9110 §11.1); nil when there is none, several, or another scheme.
    static func bearerToken(_ headers: HTTPFields) -> [UInt8]? {
        let values = headers.values("Authorization")
        guard values.count == 1, let value = values.first else { return nil }
        let bytes = Array(value.utf8)
        let scheme = Array("bearer".utf8)
        guard bytes.count > scheme.count + 1,
              zip(bytes, scheme).allSatisfy({ ($0 | 0x20) == $1 }),
              bytes[scheme.count] == 0x20
        else { return nil }
        var start = scheme.count
        while start < bytes.count, bytes[start] == 0x20 { start += 1 }
        let token = Array(bytes[start...])
        return token.isEmpty ? nil : token
    }

    private static func unauthorized(_ detail: String, error: String?) -> HTTPError {
        var challenge = "Bearer realm=\"\(realm)\""
        if let error { challenge += ", error=\"\(error)\"" }
        var headers = HTTPFields()
        headers.append(name: "WWW-Authenticate", value: challenge)
        return .http(401, detail, headers: headers)
    }

    private struct Filter: ExchangeFilter {
        let access: AccessControl

        func willRoute(_ request: inout Request) throws {
            try access.authenticate(&request)
        }
    }
}
