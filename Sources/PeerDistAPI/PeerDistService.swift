import BlockCache
import HTTPServer
import Logging
import PCCRC
import PeerDistEngine

/// The REST service: builds the router over the engine and maps errors to responses.
public final class PeerDistService: Sendable {
    /// Settings of the REST layer.
    public struct Settings: Sendable {
        /// Directory holding the server secret and other state.
        public var dataDirectory: String
        /// Longest long-poll in milliseconds.
        public var maxWaitMs: Int
        /// Bearer token guarding /admin/*; nil = unguarded.
        public var adminToken: String?
        /// The callers' tokens (`--tokens-file`); nil = open, every caller one principal.
        public var tokens: TokenTable?
        /// While open (no tokens): `Host` names served besides loopback ones (`--allowed-host`;
        /// `*` = any); others get 421.
        public var allowedHosts: [String] = []
        /// Seconds sent in Retry-After while draining.
        public var drainRetryAfterSeconds: Int
        /// A file holding the server secret's raw bytes; nil = generate one in the data directory.
        public var secretFile: String?
        /// The engine's bounds (waiters per port, retention, …).
        public var limits: EngineLimits
        /// Where request lines go at `info`: a sink that formats and writes them off the worker
        /// queues (the daemon's buffered log output); nil = through the logger.
        public var requestLog: (@Sendable (RequestLogRecord) -> Void)?
        /// The engine's clock when it is driven by hand (`--clock manual`): waits, long-polls,
        /// retention and fault delays move only through `POST /admin/clock/advance`. nil = the
        /// system clock. HTTP timeouts stay on real time either way.
        public var manualClock: ManualClock?
        /// Bearer token `/metrics` wants (`--metrics-token`); nil = served to anyone.
        public var metricsToken: String?
        /// Serve each principal's memory as a series labelled with its name (`--metrics-principals`).
        public var metricsPrincipals: Bool
        /// Bound in bytes of the one block cache, in `<dataDirectory>/cache` (`--cache-size`);
        /// least recently used entries are evicted past it.
        public var cacheSize: Int64
        /// Bytes of the cache one principal may hold before its entries are the first evicted
        /// (`--cache-share`); nil = `cacheSize` divided among the principals holding entries.
        public var cacheShare: Int64?

        /// The block cache's bound when none is given: 1 GiB.
        public static let defaultCacheSize: Int64 = 1 << 30
        /// The longest long-poll when none is given (`--max-wait`), in milliseconds: the engine's
        /// default (55 s, below the 60 s idle limit of common load balancers).
        public static let defaultMaxWaitMs = Int(EngineLimits().maxWait / .milliseconds(1))

        /// Creates settings.
        public init(dataDirectory: String, maxWaitMs: Int = defaultMaxWaitMs, adminToken: String? = nil, tokens: TokenTable? = nil,
                    allowedHosts: [String] = [], drainRetryAfterSeconds: Int = 5, secretFile: String? = nil, limits: EngineLimits = EngineLimits(),
                    requestLog: (@Sendable (RequestLogRecord) -> Void)? = nil, manualClock: ManualClock? = nil,
                    cacheSize: Int64 = defaultCacheSize, cacheShare: Int64? = nil, metricsToken: String? = nil,
                    metricsPrincipals: Bool = false) {
            self.metricsToken = metricsToken
            self.metricsPrincipals = metricsPrincipals
            self.manualClock = manualClock
            self.cacheSize = cacheSize
            self.cacheShare = cacheShare
            self.dataDirectory = dataDirectory
            self.maxWaitMs = maxWaitMs
            self.adminToken = adminToken
            self.tokens = tokens
            self.allowedHosts = allowedHosts
            self.drainRetryAfterSeconds = drainRetryAfterSeconds
            self.secretFile = secretFile
            self.limits = limits
            self.requestLog = requestLog
        }
    }

    /// The routes.
    public let router: Router
    /// The engine behind them.
    public let engine: PeerDistEngine
    /// The metrics served at `/metrics`.
    public let metrics: ServiceMetrics
    /// Tokens, principals and the admin guard.
    public let access: AccessControl
    private let logger: Logger
    private let requestLog: (@Sendable (RequestLogRecord) -> Void)?

    /// Creates the service with the server secret from the settings (generated on first use).
    /// - Throws: when the data directory or the server secret cannot be prepared, or the tokens
    ///   are refused (`AccessControl.ConfigurationError`).
    public convenience init(settings: Settings, lifecycle: ServiceLifecycle, logger: Logger, blockCache: BlockCache? = nil)
        throws
    {
        let secret = try SecretStore.load(dataDirectory: settings.dataDirectory, secretFile: settings.secretFile)
        var limits = settings.limits
        limits.maxWait = .milliseconds(settings.maxWaitMs)
        let engine = if let clock = settings.manualClock {
            PeerDistEngine(secret: secret, limits: limits, clock: clock, wallClock: clock, blockCache: blockCache)
        } else {
            PeerDistEngine(secret: secret, limits: limits, blockCache: blockCache)
        }
        try self.init(settings: settings, engine: engine, lifecycle: lifecycle, logger: logger)
    }

    /// The service with its block cache, opened (or created) at `<data-dir>/cache` and bounded by
    /// `settings.cacheSize`, its statistics served at `/metrics`; what the daemon runs. The secret
    /// is prepared first, so that the data directory is checked before the cache creates anything
    /// in it.
    /// - Throws: as `init(settings:lifecycle:logger:)`, and `BlockCacheOpenError`.
    public static func make(settings: Settings, lifecycle: ServiceLifecycle, logger: Logger) async throws -> PeerDistService {
        _ = try SecretStore.load(dataDirectory: settings.dataDirectory, secretFile: settings.secretFile)
        let cache = try await BlockCache.open(
            BlockCacheConfiguration(
                directory: settings.dataDirectory + "/cache", capacityBytes: settings.cacheSize,
                sharePerPrincipalBytes: settings.cacheShare))
        let service = try PeerDistService(settings: settings, lifecycle: lifecycle, logger: logger, blockCache: cache)
        service.metrics.observe(cache)
        return service
    }

    /// Creates the service over a given engine (tests inject clocks and secrets this way).
    /// - Throws: `AccessControl.ConfigurationError` when the tokens are refused.
    public init(settings: Settings, engine: PeerDistEngine, lifecycle: ServiceLifecycle, logger: Logger) throws {
        self.logger = logger
        self.requestLog = settings.requestLog
        self.engine = engine
        metrics = ServiceMetrics(principalLabels: settings.metricsPrincipals)
        let access = try AccessControl(
            tokens: settings.tokens, adminToken: settings.adminToken, metricsToken: settings.metricsToken,
            allowedHosts: settings.allowedHosts)
        self.access = access
        let ctx = RouteContext(engine: engine, settings: settings, metrics: metrics, access: access)
        router = Router(
            OperationalRoutes.routes(lifecycle: lifecycle, retryAfterSeconds: settings.drainRetryAfterSeconds, metrics: metrics, engine: engine)
                + InstanceRoutes.routes(ctx) + PortRoutes.routes(ctx) + OperationRoutes.routes(ctx)
                + PublishingRoutes.routes(ctx) + RetrievalRoutes.routes(ctx) + AdminRoutes.routes(ctx)
                + ClockRoutes.routes(ctx)
        )
    }

    /// Replaces the callers' tokens (SIGHUP) at once, then shuts down, as `DELETE /instances/{h}`
    /// does, every instance of a principal the new table no longer names, so that a name given out
    /// again later never sees them.
    /// - Returns: The shutdown's task: the principals revoked and how many instances were shut down.
    /// - Throws: `AccessControl.ConfigurationError` when the table is refused (the old one stays).
    @discardableResult
    public func replaceTokens(_ table: TokenTable) throws(AccessControl.ConfigurationError) -> Task<(revoked: Set<String>, instances: Int), Never> {
        let revoked = try access.replaceTokens(table)
        return Task { [engine] in
            (revoked, await engine.shutdownInstances(of: revoked, detail: "the instance's principal was removed from the tokens file"))
        }
    }

    /// The filters `HTTPServer(filters:)` takes: authentication.
    public var filters: [any ExchangeFilter] { [access.filter] }

    /// The HTTP server that serves this service's routes, observed by it (not started yet).
    public func makeHTTPServer(configuration: ServerConfiguration, logger: Logger) -> HTTPServer {
        HTTPServer(configuration: configuration, router: router, logger: logger, observer: self, filters: filters,
                   errorRenderer: errorRenderer)
    }

    /// The one place that turns errors into responses.
    public var errorRenderer: @Sendable (any Error) -> Response {
        { error in ErrorMapping.response(for: error) }
    }

    /// Starts a graceful drain: parked long-polls answer at once.
    public func beginDrain() {
        logger.info("draining: long-polls answer now")
    }
}

extension PeerDistService: RequestObserver {
    /// One log line and the metrics of every answered request.
    public func requestCompleted(_ request: Request, status: Int, bodyBytes: Int, duration: Duration) {
        metrics.requestCompleted(route: request.routeTemplate, method: request.method.rawValue, status: status,
                                 protocolName: request.version.major == 2 ? "h2" : "http/1.1", duration: duration)
        if request.acceptEncodingIgnored {
            metrics.countIgnoredAcceptEncoding()
            logger.debug("malformed Accept-Encoding ignored: answered with the identity coding", metadata: [
                "request_id": "\(request.id)", "accept_encoding": "\(request.headers.values("Accept-Encoding").joined(separator: ", ").prefix(256))",
            ])
        }
        guard logger.logLevel <= .info else { return }
        let record = RequestLogRecord(request, status: status, bodyBytes: bodyBytes, duration: duration)
        if let sink = requestLog {
            sink(record)
        } else {
            logger.info("\(RequestLogRecord.message)", metadata: Logger.Metadata(uniqueKeysWithValues: record.fields.map { ($0.key, .string($0.value)) }))
        }
    }

    public func connectionOpened() { metrics.connectionOpened() }
    public func connectionClosed() { metrics.connectionClosed() }
    public func streamOpened() { metrics.streamOpened() }
    public func streamClosed() { metrics.streamClosed() }
}
