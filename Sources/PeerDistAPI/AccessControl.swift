import HTTPServer
import Synchronization

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

    /// Whether requests must carry a token (a tokens file is configured).
    public var requiresTokens: Bool { tokens.withLock { $0 != nil } }
    /// Whether `/admin/*` wants the admin token.
    public var guardsAdmin: Bool { adminDigest != nil }

    // MARK: - Init

    /// Creates the access rules.
    /// - Parameters:
    ///   - tokens: The callers' tokens; nil = open (every caller is `anonymousPrincipal`).
    ///   - adminToken: The token guarding `/admin/*`; nil = unguarded.
    ///   - metricsToken: The token `/metrics` wants (`--metrics-token`); nil = served to anyone.
    /// - Throws: `ConfigurationError` when the admin or metrics token is malformed or the admin
    ///   token is also a caller's token.
    public init(tokens: TokenTable?, adminToken: String?, metricsToken: String? = nil) throws(ConfigurationError) {
        adminDigest = try Self.digest(of: adminToken, named: "admin")
        metricsDigest = try Self.digest(of: metricsToken, named: "metrics")
        self.tokens = Mutex(tokens)
        if let tokens { try check(tokens) }
    }

    // MARK: - API

    /// Replaces the callers' tokens (a reload). The old ones stay when the new ones are refused.
    /// - Throws: `ConfigurationError` when a token of the new table is the admin token.
    public func replaceTokens(_ table: TokenTable) throws(ConfigurationError) {
        try check(table)
        tokens.withLock { $0 = table }
    }

    /// The authentication filter: sets `principal` and `isPrivileged` on every request, or
    /// refuses it with 401.
    public var filter: any ExchangeFilter { Filter(access: self) }

    /// A route's guard for `/admin/*`: passes when no admin token is configured or the request
    /// carries it.
    /// - Throws: 401 (with the Bearer challenge) when the request carries no token; 403 otherwise.
    func requireAdmin(_ request: Request) throws(HTTPError) {
        guard guardsAdmin, !request.isPrivileged else { return }
        if Self.bearerToken(request.headers) == nil {
            throw Self.unauthorized("the admin token is required", error: nil)
        }
        throw HTTPError.http(403, "this route wants the admin token")
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
