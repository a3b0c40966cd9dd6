import Foundation
import HTTPServer
import Logging
import PeerDistAPI
import PeerDistClient
import PeerDistEngine

/// A real peerdistd service inside the test process: the daemon's assembly (service, engine,
/// HTTP server) on 127.0.0.1, port 0, with a temporary data directory, and a ready
/// `PeerDistClient` talking to it over real sockets.
///
/// ```swift
/// try await PeerDistTestServer.with(.init(clock: .manual)) { server in
///     let instance = try await server.client.startInstance()
///     …
/// }
/// ```
public final class PeerDistTestServer: Sendable {
    /// How the server runs.
    public struct Options: Sendable {
        /// The engine's clock.
        public enum Clock: Sendable {
            /// Real time.
            case system
            /// Time moves only by `PeerDistTestServer.clock.advance(by:)` (the daemon's `--clock manual`).
            case manual
        }

        /// The engine's clock (default: real time, as the daemon's default).
        public var clock: Clock
        /// The guard of /admin/*; the client is given it.
        public var adminToken: String?
        /// The longest long-poll (the daemon's `--max-wait`).
        public var maxWait: Duration
        /// How long ended operations stay readable (the daemon's `--retention`); nil = its default.
        public var retention: Duration?

        /// Creates options.
        public init(clock: Clock = .system, adminToken: String? = nil, maxWait: Duration = EngineLimits().maxWait, retention: Duration? = nil) {
            self.clock = clock
            self.adminToken = adminToken
            self.maxWait = maxWait
            self.retention = retention
        }
    }

    /// A client of this server.
    public let client: PeerDistClient
    /// `/admin/faults` of this server.
    public let faults: FaultInjection
    /// The engine's clock (advancing needs `Options.Clock.manual`).
    public let clock: TestClock
    /// Where the server listens (`http://127.0.0.1:PORT`).
    public let baseURL: URL
    /// The temporary data directory (removed by `stop()`).
    public let dataDirectory: String

    private let server: HTTPServer
    private let service: PeerDistService
    private let lifecycle: ServiceLifecycle

    private init(server: HTTPServer, service: PeerDistService, lifecycle: ServiceLifecycle, manualClock: ManualClock?,
                 baseURL: URL, dataDirectory: String, adminToken: String?) {
        self.server = server
        self.service = service
        self.lifecycle = lifecycle
        self.baseURL = baseURL
        self.dataDirectory = dataDirectory
        client = PeerDistClient(PeerDistClientConfiguration(baseURL: baseURL, adminToken: adminToken))
        faults = FaultInjection(client: client)
        clock = TestClock(client: client, manual: manualClock)
    }

    /// Starts a server; call `stop()` when done (or use `with(_:_:)`).
    public static func start(_ options: Options = Options()) async throws -> PeerDistTestServer {
        let dataDirectory = FileManager.default.temporaryDirectory
            .appendingPathComponent("peerdist-test-\(UUID().uuidString)", isDirectory: true).path
        // Private, as the service requires of a directory holding its secret.
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        do {
            var limits = EngineLimits()
            if let retention = options.retention { limits.retention = retention }
            let manualClock = options.clock == .manual ? ManualClock(startDate: Date()) : nil
            let maxWaitMs = PeerDistClient.milliseconds(options.maxWait)
            let lifecycle = ServiceLifecycle()
            var logger = Logger(label: "peerdist-testing")
            logger.logLevel = .critical
            let service = try await PeerDistService.make(
                settings: .init(dataDirectory: dataDirectory, maxWaitMs: maxWaitMs, adminToken: options.adminToken,
                                limits: limits, manualClock: manualClock),
                lifecycle: lifecycle, logger: logger)
            var configuration = ServerConfiguration()
            configuration.host = "127.0.0.1"
            configuration.port = 0
            configuration.drainTimeout = .seconds(5)
            let server = service.makeHTTPServer(configuration: configuration, logger: logger)
            let bound = try server.start()
            guard let url = URL(string: "http://127.0.0.1:\(bound.port)") else {
                throw PeerDistError(code: 87, error: "ERROR_INVALID_PARAMETER", status: 0, detail: "no URL for port \(bound.port)")
            }
            return PeerDistTestServer(server: server, service: service, lifecycle: lifecycle, manualClock: manualClock,
                                      baseURL: url, dataDirectory: dataDirectory, adminToken: options.adminToken)
        } catch {
            try? FileManager.default.removeItem(atPath: dataDirectory)
            throw error
        }
    }

    /// Runs `body` against a fresh server and tears it down afterwards, whatever `body` does.
    public static func with<T: Sendable>(
        _ options: Options = Options(), _ body: (PeerDistTestServer) async throws -> T
    ) async throws -> T {
        let server = try await start(options)
        do {
            let result = try await body(server)
            await server.stop()
            return result
        } catch {
            await server.stop()
            throw error
        }
    }

    /// Drains as the daemon does on SIGTERM (parked long-polls answer), stops, and removes the
    /// data directory.
    public func stop() async {
        lifecycle.beginDrain()
        service.beginDrain()
        await server.drain()
        try? FileManager.default.removeItem(atPath: dataDirectory)
    }
}

/// The server's `/admin/faults`, for making operations slow.
public struct FaultInjection: Sendable {
    let client: PeerDistClient

    /// Operations of `kinds` (every kind when nil) end no sooner than `completionDelay` after they
    /// start (under a manual clock: once the clock has been advanced that far).
    @discardableResult
    public func delay(_ completionDelay: Duration, kinds: [PeerDistOperationKind]? = nil) async throws -> Faults {
        try await client.setFaults(completionDelay: completionDelay, kinds: kinds)
    }

    /// No faults.
    public func clear() async throws {
        try await client.setFaults(completionDelay: .zero)
    }

    /// The faults in force.
    public func current() async throws -> Faults { try await client.faults() }
}

/// The server's engine clock: read and advanced over HTTP (`/admin/clock`), like a harness
/// driving `peerdistd --clock manual` would; and, in-process, told when waiters have parked.
public struct TestClock: Sendable {
    let client: PeerDistClient
    let manual: ManualClock?

    /// Whether the server runs on a hand-driven clock.
    public var isManual: Bool { manual != nil }

    /// Engine time since the server started.
    public func now() async throws -> Duration { try await client.clock().now }

    /// Moves engine time forward; what came due has run when it returns.
    /// - Throws: `PeerDistError` 50 under the system clock.
    @discardableResult
    public func advance(by duration: Duration) async throws -> Duration {
        try await client.advanceClock(by: duration).now
    }

    /// Timers of the manual clock that are armed: one per parked timed wait, delayed operation
    /// and retention sweep. 0 under the system clock.
    public var pendingTimers: Int { manual?.pendingTimerCount ?? 0 }

    /// Waits (in real time, at most `timeout`) until at least `count` timers are armed: the way a
    /// test knows its long-poll has parked before it advances the clock past its deadline.
    /// - Returns: Whether they were, in time.
    @discardableResult
    public func waitForPendingTimers(atLeast count: Int, timeout: Duration = .seconds(10)) async -> Bool {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while pendingTimers < count {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(1))
        }
        return true
    }
}
