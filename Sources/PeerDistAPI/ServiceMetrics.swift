import BlockCache
import CoreMetrics
import HTTPServer
import PeerDistEngine
import Prometheus
import Synchronization

/// The service's metrics, through swift-metrics with swift-prometheus as the backend, rendered in
/// the Prometheus text format at `GET /metrics`. Gauges that mirror engine state are read when
/// scraped; counters and the latency histogram are updated as requests end.
public final class ServiceMetrics: Sendable {
    private let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    /// Identifies one labelled series without building a string per request.
    private struct SeriesKey: Hashable {
        var route: String
        var method: String
        var status: Int
        var protocolName: String
    }

    /// A request series' counter and its route's latency timer, found by one lookup per request.
    private struct Series {
        let counter: CoreMetrics.Counter
        let timer: CoreMetrics.Timer
    }

    private struct RequestSeries {
        /// By route, method, status and protocol.
        var series: [SeriesKey: Series] = [:]
        /// By route and method (status 0, no protocol): shared by their series.
        var timers: [SeriesKey: CoreMetrics.Timer] = [:]
    }

    private let requestSeries = Mutex(RequestSeries())
    private let cancelCounters: [CancelOutcome: CoreMetrics.Counter]
    private let pendingGauges: [OperationKind: CoreMetrics.Gauge]
    private let openConnections: CoreMetrics.Gauge
    private let openStreams: CoreMetrics.Gauge
    private let streamCount = Atomic<Int>(0)
    private let parkedWaiters: CoreMetrics.Gauge
    private let bytesHashedCounter: CoreMetrics.Counter
    private let droppedLogLines: CoreMetrics.Counter
    private let ignoredAcceptEncodings: CoreMetrics.Counter
    private let expiredInstances: CoreMetrics.Counter
    /// The engine's expiry count as of the last scrape (the counter moves by the difference).
    private let expiredSeen = Mutex<UInt64>(0)
    private let operationsReleasedEarly: CoreMetrics.Counter
    private let releasedSeen = Mutex<UInt64>(0)
    private let connectionCount = Atomic<Int>(0)
    private let cacheGauges: CacheGauges
    /// `peerdist_memory_bytes{kind}`: what all principals hold, by what holds it.
    private let memoryGauges: [(CoreMetrics.Gauge, @Sendable (MemoryUsage) -> Int)]
    /// Whether each principal's memory is a series of its own (`--metrics-principals`).
    private let principalLabels: Bool
    /// `peerdist_principal_memory_bytes{principal}`, by principal, once seen.
    private let principalGauges = Mutex<[String: CoreMetrics.Gauge]>([:])
    /// The block cache read at each scrape, and its counters as of the last one.
    private let cache = Mutex<(cache: BlockCache, seen: BlockCacheStatistics)?>(nil)

    /// The block cache's series: gauges of what it holds, counters of what happened to it.
    private struct CacheGauges: Sendable {
        let bytes: CoreMetrics.Gauge
        let entries: CoreMetrics.Gauge
        let stagedBytes: CoreMetrics.Gauge
        let hits: CoreMetrics.Counter
        let misses: CoreMetrics.Counter
        let rejectedOnEntry: CoreMetrics.Counter
        let corruptOnRead: CoreMetrics.Counter
        let evictions: CoreMetrics.Counter
        let stagingEvictions: CoreMetrics.Counter

        init(factory: PrometheusMetricsFactory) {
            bytes = Gauge(label: "peerdist_cache_bytes", factory: factory)
            entries = Gauge(label: "peerdist_cache_entries", factory: factory)
            stagedBytes = Gauge(label: "peerdist_cache_staged_bytes", factory: factory)
            hits = Counter(label: "peerdist_cache_hits_total", factory: factory)
            misses = Counter(label: "peerdist_cache_misses_total", factory: factory)
            rejectedOnEntry = Counter(label: "peerdist_cache_verification_failures_total", dimensions: [("stage", "entry")], factory: factory)
            corruptOnRead = Counter(label: "peerdist_cache_verification_failures_total", dimensions: [("stage", "read")], factory: factory)
            evictions = Counter(label: "peerdist_cache_evictions_total", factory: factory)
            stagingEvictions = Counter(label: "peerdist_cache_staging_evictions_total", factory: factory)
        }
    }

    /// Cancel outcomes (PeerDistServerCancelAsyncOperation).
    enum CancelOutcome: String, CaseIterable {
        /// The cancellation posted the result.
        case canceled
        /// The operation had ended before: its own result stands (4059).
        case lostRace = "lost_race"
        /// No such operation (4059).
        case notFound = "not_found"
    }

    /// Creates the metrics with their own registry.
    /// - Parameter principalLabels: Serve each principal's memory as a series labelled with its
    ///   name (`--metrics-principals`); without it no series names a principal.
    public init(principalLabels: Bool = false) {
        self.principalLabels = principalLabels
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2.5),
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10), .seconds(30), .seconds(60),
        ]
        self.factory = factory
        openConnections = Gauge(label: "peerdist_http_open_connections", factory: factory)
        openStreams = Gauge(label: "peerdist_http2_open_streams", factory: factory)
        parkedWaiters = Gauge(label: "peerdist_parked_waiters", factory: factory)
        bytesHashedCounter = Counter(label: "peerdist_bytes_hashed_total", factory: factory)
        droppedLogLines = Counter(label: "peerdist_log_lines_dropped_total", factory: factory)
        ignoredAcceptEncodings = Counter(label: "peerdist_http_accept_encoding_ignored_total", factory: factory)
        expiredInstances = Counter(label: "peerdist_instance_leases_expired_total", factory: factory)
        operationsReleasedEarly = Counter(label: "peerdist_operations_released_early_total", factory: factory)
        cancelCounters = Dictionary(uniqueKeysWithValues: CancelOutcome.allCases.map { outcome in
            (outcome, Counter(label: "peerdist_cancels_total", dimensions: [("outcome", outcome.rawValue)], factory: factory))
        })
        pendingGauges = Dictionary(uniqueKeysWithValues: OperationKind.allCases.map { kind in
            (kind, Gauge(label: "peerdist_pending_operations", dimensions: [("kind", kind.rawValue)], factory: factory))
        })
        cacheGauges = CacheGauges(factory: factory)
        let kinds: [(String, @Sendable (MemoryUsage) -> Int)] = [
            ("content_information", { $0.contentInformation }),
            ("retrieval_content_information", { $0.retrievalContentInformation }),
            ("retrieval_data", { $0.retrievalData }), ("read_buffers", { $0.readBuffers }), ("uploads", { $0.uploads }),
        ]
        memoryGauges = kinds.map { kind, value in
            (Gauge(label: "peerdist_memory_bytes", dimensions: [("kind", kind)], factory: factory), value)
        }
    }

    /// Serves `cache`'s statistics at every scrape from now on (read then, without touching the
    /// disk): `peerdist_cache_bytes`, `_entries`, `_staged_bytes`, and the counters `_hits_total`,
    /// `_misses_total`, `_verification_failures_total{stage="entry"|"read"}`, `_evictions_total`
    /// and `_staging_evictions_total`. Call it once, where the cache is opened; a later call
    /// replaces the cache, and the counters go on from where they were.
    public func observe(_ cache: BlockCache) {
        self.cache.withLock { observed in
            let now = cache.statistics()
            observed = (cache, now)
            // What the cache counted before it was observed counts too.
            record(cacheStatistics: now, since: BlockCacheStatistics())
        }
    }

    /// Log lines dropped because the log output's buffer was full (it never waits).
    public func countDroppedLogLines(_ count: Int) { droppedLogLines.increment(by: count) }

    /// A request whose malformed Accept-Encoding was ignored (answered with the identity coding).
    func countIgnoredAcceptEncoding() { ignoredAcceptEncodings.increment() }

    func connectionOpened() { openConnections.record(connectionCount.add(1, ordering: .relaxed).newValue) }
    func connectionClosed() { openConnections.record(connectionCount.subtract(1, ordering: .relaxed).newValue) }
    func streamOpened() { openStreams.record(streamCount.add(1, ordering: .relaxed).newValue) }
    func streamClosed() { openStreams.record(streamCount.subtract(1, ordering: .relaxed).newValue) }

    private static let knownMethods: Set<String> = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]

    /// Counts one answered request and records its latency.
    func requestCompleted(route: String, method: String, status: Int, protocolName: String, duration: Duration) {
        let routeLabel = route.isEmpty ? "unmatched" : route
        // Methods are client-chosen tokens: only known ones get a series of their own, so that
        // the number of series stays bounded.
        let method = Self.knownMethods.contains(method) ? method : "other"
        let key = SeriesKey(route: routeLabel, method: method, status: status, protocolName: protocolName)
        let series = requestSeries.withLock { table in
            if let found = table.series[key] { return found }
            let timerKey = SeriesKey(route: routeLabel, method: method, status: 0, protocolName: "")
            let timer = table.timers[timerKey] ?? Timer(
                label: "peerdist_http_request_duration_seconds",
                dimensions: [("route", routeLabel), ("method", method)], preferredDisplayUnit: .seconds, factory: factory)
            table.timers[timerKey] = timer
            let counter = Counter(label: "peerdist_http_requests_total",
                                  dimensions: [("route", routeLabel), ("method", method), ("status", String(status)), ("protocol", protocolName)],
                                  factory: factory)
            let made = Series(counter: counter, timer: timer)
            table.series[key] = made
            return made
        }
        series.counter.increment()
        let (seconds, attoseconds) = duration.components
        series.timer.recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    /// Counts a cancel by outcome.
    func cancelled(_ outcome: CancelOutcome) { cancelCounters[outcome]?.increment() }

    /// Counts bytes handed to the hasher.
    func hashed(_ bytes: Int) { bytesHashedCounter.increment(by: Int64(bytes)) }

    /// The Prometheus text exposition, with engine gauges read now (counts the engine keeps as
    /// they change: a scrape walks no instance or operation).
    func render(engine: PeerDistEngine) -> [UInt8] {
        let stats = engine.statistics(byPrincipal: principalLabels)
        parkedWaiters.record(stats.parkedWaiters)
        for (kind, gauge) in pendingGauges { gauge.record(stats.pendingByKind[kind] ?? 0) }
        for (gauge, value) in memoryGauges { gauge.record(value(stats.memory)) }
        if principalLabels { recordPrincipals(stats.memoryByPrincipal) }
        Self.advance(expiredInstances, to: stats.expiredInstances, seen: expiredSeen)
        Self.advance(operationsReleasedEarly, to: stats.operationsReleasedEarly, seen: releasedSeen)
        // Under the lock: two scrapes at once count each increment once, and in order.
        cache.withLock { observed in
            guard let (cache, seen) = observed else { return }
            let now = cache.statistics()
            observed = (cache, now)
            record(cacheStatistics: now, since: seen)
        }
        var out: [UInt8] = []
        registry.emit(into: &out)
        return out
    }

    /// Moves `counter` by what the engine's `total` grew since the last scrape saw it.
    private static func advance(_ counter: CoreMetrics.Counter, to total: UInt64, seen: borrowing Mutex<UInt64>) {
        let grown = seen.withLock { seen in
            defer { seen = max(seen, total) }
            return total > seen ? total - seen : 0
        }
        counter.increment(by: Int64(clamping: grown))
    }

    /// Sets each principal's memory gauge; one seen before that holds nothing now reads 0.
    private func recordPrincipals(_ memory: [String: MemoryUsage]) {
        principalGauges.withLock { gauges in
            for principal in memory.keys where gauges[principal] == nil {
                gauges[principal] = Gauge(
                    label: "peerdist_principal_memory_bytes", dimensions: [("principal", principal)], factory: factory)
            }
            for (principal, gauge) in gauges { gauge.record(memory[principal]?.total ?? 0) }
        }
    }

    /// Sets the cache gauges to `now` and moves each counter by what it grew since `seen`.
    private func record(cacheStatistics now: BlockCacheStatistics, since seen: BlockCacheStatistics) {
        let g = cacheGauges
        g.bytes.record(now.bytes)
        g.entries.record(now.entries)
        g.stagedBytes.record(now.stagedBytes)
        for (counter, value, before) in [
            (g.hits, now.hits, seen.hits), (g.misses, now.misses, seen.misses),
            (g.rejectedOnEntry, now.rejectedOnEntry, seen.rejectedOnEntry), (g.corruptOnRead, now.corruptOnRead, seen.corruptOnRead),
            (g.evictions, now.evictions, seen.evictions), (g.stagingEvictions, now.stagingEvictions, seen.stagingEvictions),
        ] where value > before {
            counter.increment(by: value - before)
        }
    }
}
