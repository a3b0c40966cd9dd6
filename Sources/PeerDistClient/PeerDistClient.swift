import Foundation
import HTTPTypes
import OpenAPIRuntime
import OpenAPIURLSession

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A PeerDist service's address and credentials.
public struct PeerDistClientConfiguration: Sendable {
    /// The service's base URL, e.g. `http://127.0.0.1:8080`.
    public var baseURL: URL
    /// Sent as `Authorization: Bearer <token>` on every request; nil = none.
    public var token: String?
    /// Sent instead of `token` on `/admin/*` (the server's `--admin-token`); nil = `token`.
    public var adminToken: String?
    /// Seconds one request may take; longer than the server's `--max-wait` (55 s by default), so
    /// that a long-poll ends by the server's answer.
    public var requestTimeout: TimeInterval

    /// Creates a configuration.
    public init(baseURL: URL, token: String? = nil, adminToken: String? = nil, requestTimeout: TimeInterval = 90) {
        self.baseURL = baseURL
        self.token = token
        self.adminToken = adminToken
        self.requestTimeout = requestTimeout
    }
}

/// A Win32 error the service answered with (its problem+json `code` and `error`), or an answer
/// the contract does not describe (`code` 0, `error` `UNEXPECTED_RESPONSE`).
public struct PeerDistError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The Win32 code (995 for `ERROR_OPERATION_ABORTED`).
    public var code: Int
    /// Its symbolic name.
    public var error: String
    /// The HTTP status it came with.
    public var status: Int
    /// What went wrong, for this request.
    public var detail: String?

    /// Creates an error.
    public init(code: Int, error: String, status: Int, detail: String? = nil) {
        self.code = code
        self.error = error
        self.status = status
        self.detail = detail
    }

    public var description: String {
        "\(error) (\(code), HTTP \(status))" + (detail.map { ": \($0)" } ?? "")
    }
}

/// The generated client of openapi.yaml (`api`), and a thin layer over it for the flows a
/// harness runs: start an instance, publish, wait, cancel, drain a port, fetch content
/// information, and the test-harness controls (faults, clock).
///
/// The layer's calls throw `PeerDistError` for every problem+json answer; `api` is the plain
/// generated client, whose outputs carry those answers as cases.
public final class PeerDistClient: Sendable {
    /// The generated client (every operation of openapi.yaml), with the configured credentials.
    public let api: Client
    /// The same, turning problem+json answers into thrown `PeerDistError`s (the layer's calls).
    let checked: Client
    /// The configuration it was made with.
    public let configuration: PeerDistClientConfiguration
    private let session: URLSession

    /// Creates a client over its own URLSession.
    public init(_ configuration: PeerDistClientConfiguration) {
        self.configuration = configuration
        let sessionConfiguration = URLSessionConfiguration.ephemeral
        sessionConfiguration.timeoutIntervalForRequest = configuration.requestTimeout
        sessionConfiguration.httpMaximumConnectionsPerHost = 32
        session = URLSession(configuration: sessionConfiguration)
        let transport = URLSessionTransport(configuration: .init(session: session))
        let auth = BearerMiddleware(token: configuration.token, adminToken: configuration.adminToken)
        // The service writes dates as RFC 3339 with fractional seconds (`2026-12-01T12:00:00.123Z`).
        let runtime = Configuration(dateTranscoder: .iso8601WithFractionalSeconds)
        api = Client(serverURL: configuration.baseURL, configuration: runtime, transport: transport, middlewares: [auth])
        checked = Client(serverURL: configuration.baseURL, configuration: runtime, transport: transport,
                         middlewares: [auth, ProblemMiddleware()])
    }

    /// Creates a client of the service at `baseURL`.
    public convenience init(baseURL: URL, token: String? = nil) {
        self.init(PeerDistClientConfiguration(baseURL: baseURL, token: token))
    }

    deinit { session.finishTasksAndInvalidate() }

    /// Runs a call of `checked`, rethrowing the `PeerDistError` its middleware raised as itself.
    func call<T>(_ body: (Client) async throws -> T) async throws -> T {
        do {
            return try await body(checked)
        } catch let error as ClientError {
            if let problem = error.underlyingError as? PeerDistError { throw problem }
            throw error
        }
    }

    // MARK: - Instances

    /// `PeerDistStartup`: a new instance (with its `default` completion port).
    public func startInstance(version: Int? = nil) async throws -> PeerDistInstance {
        let output = try await call { try await $0.createInstance(body: .json(.init(version: version))) }
        guard case .created(let created) = output else { throw PeerDistError.unexpected(output) }
        return PeerDistInstance(client: self, handle: try created.body.json.handle)
    }

    // MARK: - Test-harness controls

    /// `PUT /admin/faults`: operations of `kinds` (every kind when nil) end no sooner than `delay`
    /// after they start. `.zero` clears.
    @discardableResult
    public func setFaults(completionDelay: Duration, kinds: [Components.Schemas.OperationKind]? = nil) async throws -> Faults {
        let output = try await call {
            try await $0.setFaults(body: .json(.init(completionDelayMs: Self.milliseconds(completionDelay), kinds: kinds)))
        }
        guard case .ok(let ok) = output else { throw PeerDistError.unexpected(output) }
        let body = try ok.body.json
        return Faults(completionDelay: .milliseconds(body.completionDelayMs), kinds: body.kinds)
    }

    /// `GET /admin/faults`.
    public func faults() async throws -> Faults {
        let output = try await call { try await $0.getFaults() }
        guard case .ok(let ok) = output else { throw PeerDistError.unexpected(output) }
        let body = try ok.body.json
        return Faults(completionDelay: .milliseconds(body.completionDelayMs), kinds: body.kinds)
    }

    /// `GET /admin/clock`.
    public func clock() async throws -> ClockReading {
        let output = try await call { try await $0.getClock() }
        guard case .ok(let ok) = output else { throw PeerDistError.unexpected(output) }
        return ClockReading(try ok.body.json)
    }

    /// `POST /admin/clock/advance`: moves a `--clock manual` engine's time forward; everything that
    /// came due (timeouts, retention, fault delays) has run when it returns.
    /// - Throws: `PeerDistError` 50 `ERROR_NOT_SUPPORTED` under the system clock.
    @discardableResult
    public func advanceClock(by duration: Duration) async throws -> ClockReading {
        let output = try await call { try await $0.advanceClock(body: .json(.init(ms: Self.milliseconds(duration)))) }
        guard case .ok(let ok) = output else { throw PeerDistError.unexpected(output) }
        return ClockReading(try ok.body.json)
    }

    /// Whole milliseconds of a duration, rounded toward zero and clamped to `Int` (a negative one stays negative: the server refuses it with 87).
    public static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        let (ms, overflow) = seconds.multipliedReportingOverflow(by: 1_000)
        guard !overflow else { return seconds < 0 ? Int.min : Int.max }
        let (total, overflow2) = ms.addingReportingOverflow(attoseconds / 1_000_000_000_000_000)
        return overflow2 ? Int.max : Int(total)
    }
}

/// The faults in force.
public struct Faults: Sendable, Hashable {
    /// How long operations of `kinds` take at least.
    public var completionDelay: Duration
    /// The kinds delayed; nil = every kind.
    public var kinds: [Components.Schemas.OperationKind]?
}

/// The engine's clock.
public struct ClockReading: Sendable, Hashable {
    /// Whether the engine runs on the system clock or a hand-driven one.
    public enum Mode: String, Sendable { case system, manual }

    /// The clock's kind.
    public var mode: Mode
    /// Engine time since the service started.
    public var now: Duration

    init(_ body: Components.Responses.Clock.Body.JsonPayload) {
        mode = body.mode == .manual ? .manual : .system
        now = .milliseconds(body.nowMs)
    }
}

extension PeerDistError {
    /// The Win32 code of `ERROR_OPERATION_ABORTED`, the result of a cancelled operation.
    public static let operationAbortedCode = 995

    /// An output the layer did not expect (a status the contract does not list for the call).
    static func unexpected(_ output: some Sendable) -> PeerDistError {
        PeerDistError(code: 0, error: "UNEXPECTED_RESPONSE", status: 0, detail: "\(output)")
    }
}

/// Sets `Authorization: Bearer` from the configuration, and sends `Prefer` as written.
struct BearerMiddleware: ClientMiddleware {
    static let prefer = HTTPField.Name("Prefer")!
    let token: String?
    let adminToken: String?

    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        var request = request
        let isAdmin = request.path?.hasPrefix("/admin/") ?? false
        if let value = (isAdmin ? adminToken ?? token : token) {
            request.headerFields[.authorization] = "Bearer \(value)"
        }
        // swift-openapi-runtime percent-encodes header parameters as URI components, so the
        // `Prefer` parameter would go out as `wait%3D10`, which RFC 7240 does not read as `wait=10`.
        if let prefer = request.headerFields[Self.prefer], let decoded = prefer.removingPercentEncoding {
            request.headerFields[Self.prefer] = decoded
        }
        return try await next(request, body, baseURL)
    }
}

/// Turns every problem+json answer into a thrown `PeerDistError` carrying its `code` and `error`.
struct ProblemMiddleware: ClientMiddleware {
    /// Problem documents are small; a larger body is not one.
    static let maxProblemBytes = 64 * 1024

    private struct Problem: Decodable {
        var code: Int
        var error: String
        var detail: String?
    }

    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        let (response, responseBody) = try await next(request, body, baseURL)
        guard response.status.code >= 400 else { return (response, responseBody) }
        let status = response.status.code
        var bytes = Data()
        if let responseBody { bytes = try await Data(collecting: responseBody, upTo: Self.maxProblemBytes) }
        if let problem = try? JSONDecoder().decode(Problem.self, from: bytes) {
            throw PeerDistError(code: problem.code, error: problem.error, status: status, detail: problem.detail)
        }
        throw PeerDistError(code: 0, error: "UNEXPECTED_RESPONSE", status: status,
                            detail: String(decoding: bytes.prefix(512), as: UTF8.self))
    }
}
