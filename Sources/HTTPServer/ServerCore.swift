import Logging
import Synchronization
import Transport

/// What every connection of a server shares: configuration, router, error rendering, the
/// connection registry and the drain state.
final class ServerCore: Sendable {
    let configuration: ServerConfiguration
    let router: Router
    let logger: Logger
    private let errorRenderer: @Sendable (any Error) -> Response
    private let observer: (any RequestObserver)?

    private struct Registry {
        var connections: [ObjectIdentifier: HTTP1ConnectionHandler] = [:]
        var draining = false
        var acceptPaused = false
        var drainWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let registry = Mutex(Registry())
    /// Called when the open-connection count crosses the cap (true = pause accepting).
    let setAcceptPaused: Mutex<(@Sendable (Bool) -> Void)?> = Mutex(nil)

    init(configuration: ServerConfiguration, router: Router, logger: Logger,
         errorRenderer: @escaping @Sendable (any Error) -> Response, observer: (any RequestObserver)?) {
        self.configuration = configuration
        self.router = router
        self.logger = logger
        self.errorRenderer = errorRenderer
        self.observer = observer
    }

    /// Turns a handler's error into a response; HTTPError renders itself, anything else is a 500.
    func render(_ error: any Error) -> Response {
        errorRenderer(error)
    }

    func requestCompleted(_ request: Request, status: Int, bodyBytes: Int) {
        observer?.requestCompleted(request, status: status, bodyBytes: bodyBytes, duration: .now - request.receivedAt)
    }

    private let requestIDs = AtomicCounter()
    private let requestIDPrefix = String(UInt32.random(in: 0...UInt32.max), radix: 16)

    /// A new request id, unique in this process and unlikely to repeat across restarts.
    func makeRequestID() -> String {
        "\(requestIDPrefix)-\(String(requestIDs.increment(), radix: 16))"
    }

    var isDraining: Bool { registry.withLock { $0.draining } }

    var openConnections: Int { registry.withLock { $0.connections.count } }

    /// Registers a new connection; false when draining (the caller closes it).
    func connectionOpened(_ handler: HTTP1ConnectionHandler) -> Bool {
        // The listener is told while the registry is locked, so a pause and a resume from two
        // workers reach it in the order the registry decided them.
        let (accepted, paused) = registry.withLock { r -> (Bool, Bool) in
            guard !r.draining else { return (false, false) }
            r.connections[ObjectIdentifier(handler)] = handler
            if !r.acceptPaused && r.connections.count >= configuration.maxConnections {
                r.acceptPaused = true
                setAcceptPaused.withLock { $0 }?(true)
                return (true, true)
            }
            return (true, false)
        }
        if accepted { observer?.connectionOpened() }
        if paused {
            logger.warning("connection cap reached; accepting paused", metadata: ["max": "\(configuration.maxConnections)"])
        }
        return accepted
    }

    func connectionClosed(_ handler: HTTP1ConnectionHandler) {
        observer?.connectionClosed()
        let waiters = registry.withLock { r -> [CheckedContinuation<Void, Never>] in
            r.connections.removeValue(forKey: ObjectIdentifier(handler))
            if r.acceptPaused && !r.draining && r.connections.count < configuration.maxConnections {
                r.acceptPaused = false
                setAcceptPaused.withLock { $0 }?(false)
            }
            if r.draining && r.connections.isEmpty {
                defer { r.drainWaiters.removeAll() }
                return r.drainWaiters
            }
            return []
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Marks the server draining and tells every connection; returns once all have closed.
    func drainConnections() async {
        let handlers = registry.withLock { r -> [HTTP1ConnectionHandler] in
            r.draining = true
            return Array(r.connections.values)
        }
        for handler in handlers {
            handler.connection.queue.async { handler.drain() }
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = registry.withLock { r -> Bool in
                if r.connections.isEmpty { return true }
                r.drainWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    /// Closes every connection now.
    func closeAll() {
        let handlers = registry.withLock { Array($0.connections.values) }
        for handler in handlers {
            handler.connection.queue.async { handler.close() }
        }
    }
}

/// Sees every answered request and every connection (for request logs and metrics).
public protocol RequestObserver: Sendable {
    /// Called on the connection's queue once a response has been queued.
    /// - Parameters:
    ///   - request: the request (its `routeTemplate` is empty when no route matched).
    ///   - status: the response status.
    ///   - bodyBytes: the response body's length.
    ///   - duration: from the parsed head to the queued response.
    func requestCompleted(_ request: Request, status: Int, bodyBytes: Int, duration: Duration)
    /// A connection was accepted.
    func connectionOpened()
    /// A connection closed.
    func connectionClosed()
}

extension RequestObserver {
    public func connectionOpened() {}
    public func connectionClosed() {}
}
