#if canImport(Glibc)
import Glibc
#endif
import Logging
import Synchronization
import Transport

/// The HTTP/1.1 server: a listener, a few serial worker queues and one protocol handler per
/// connection. No thread per connection, no SwiftNIO.
public final class HTTPServer: Sendable {
    private let core: ServerCore
    private let workers: WorkerPool
    private let listener: Mutex<Listener?> = Mutex(nil)
    private let nextID = AtomicCounter()

    /// Creates a server; nothing is bound until `start()`.
    /// - Parameters:
    ///   - configuration: limits, timeouts and address.
    ///   - router: the routes.
    ///   - logger: for lifecycle events and warnings.
    ///   - observer: sees every answered request.
    ///   - filters: run on every exchange after request ids are assigned and before compression
    ///     (authentication belongs here).
    ///   - errorRenderer: turns errors thrown by handlers into responses (the one place that maps
    ///     domain errors); by default `HTTPError` renders itself and anything else is a 500.
    public init(
        configuration: ServerConfiguration, router: Router, logger: Logger = Logger(label: "peerdist.http"),
        observer: (any RequestObserver)? = nil, filters: [any ExchangeFilter] = [],
        errorRenderer: @escaping @Sendable (any Error) -> Response = HTTPServer.defaultErrorRenderer
    ) {
        core = ServerCore(configuration: configuration, router: router, logger: logger, filters: filters,
                          errorRenderer: errorRenderer, observer: observer)
        let count = configuration.workerCount > 0 ? configuration.workerCount : ProcessInfoShim.activeProcessorCount
        workers = WorkerPool(count: count)
    }

    /// Renders `HTTPError` as problem+json and anything else as a 500 without internal details.
    public static let defaultErrorRenderer: @Sendable (any Error) -> Response = { error in
        if let error = error as? HTTPError { return ProblemResponse.make(error) }
        return ProblemResponse.make(.http(500, "internal error"))
    }

    /// Binds, listens and starts accepting.
    /// - Returns: the bound host and port (the real port when 0 was asked).
    /// - Throws: `SocketError` when binding fails.
    @discardableResult
    public func start() throws -> (host: String, port: Int) {
        let configuration = core.configuration
        let listener = try Listener(host: configuration.host, port: configuration.port, backlog: configuration.backlog)
        self.listener.withLock { $0 = listener }
        core.resumeAccepting.withLock { $0 = { [weak listener] in listener?.resume() } }
        listener.start(admit: core.mayAccept) { [core, workers, nextID] fd in
            guard core.takeSlot() else {
                _ = Glibc.close(fd)
                return
            }
            let worker = workers.nextWorker()
            let connection = Connection(fd: fd, id: nextID.increment(), worker: worker)
            connection.lingerTime = core.configuration.closeLinger
            let handler = HTTP1ConnectionHandler(connection: connection, core: core)
            worker.queue.async {
                if core.connectionOpened(handler) {
                    handler.start()
                } else {
                    connection.close()
                    core.connectionClosed(handler)
                }
            }
        }
        core.logger.info("listening", metadata: ["host": "\(listener.boundHost)", "port": "\(listener.boundPort)"])
        return (listener.boundHost, listener.boundPort)
    }

    /// The bound port, once started.
    public var port: Int? { listener.withLock { $0?.boundPort } }

    /// Whether a graceful drain has begun (readiness answers 503 then).
    public var isDraining: Bool { core.isDraining }

    /// Connections currently open.
    public var openConnections: Int { core.openConnections }

    /// Idle connections closed at the connection cap to make room for new ones.
    public var evictedConnections: UInt64 { core.evictedConnections }

    /// Request-body bytes HTTP/2 streams hold for their handlers now, over all connections
    /// (each connection at most `maxBufferedBodyPerConnection`).
    public var bufferedRequestBodyBytes: Int { core.bufferedBodyBytes }

    /// Graceful shutdown: stop accepting, let requests in flight finish (long-polls answer at
    /// once), then close; whatever is left after `drainTimeout` is closed by force.
    public func drain() async {
        listener.withLock { $0?.stop() }
        let timeout = core.configuration.drainTimeout
        await withTaskGroup(of: Bool.self) { group in
            group.addTask { [core] in
                await core.drainConnections()
                return true
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            if await group.next() == false {
                core.logger.warning("drain timeout: closing remaining connections", metadata: ["open": "\(core.openConnections)"])
                core.closeAll()
                _ = await group.next()
            }
            group.cancelAll()
        }
    }
}
