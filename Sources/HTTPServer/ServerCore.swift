import Logging
import Synchronization
import Transport

/// What every connection of a server shares: configuration, the exchange runner (filters,
/// router, handlers), the connection registry and the drain state.
final class ServerCore: Sendable {
    let configuration: ServerConfiguration
    let runner: ExchangeRunner
    /// The rules for request bodies, shared by both protocols.
    let bodies: RequestBodyPolicy
    let logger: Logger
    private let observer: (any RequestObserver)?

    private struct Registry {
        var connections: [UInt64: any ConnectionHandler] = [:]
        /// Connections admitted: registered, or accepted and on their way to it. At most
        /// `maxConnections`.
        var slots = 0
        /// Connections waiting for a request with no byte of it received (new ones, and idle
        /// keep-alive ones), with when they became so: at the cap, the oldest is closed to make
        /// room (nginx's reusable connections).
        var idle: [UInt64: UInt64] = [:]
        var idleSequence: UInt64 = 0
        /// Connections closed to make room: their slot went to a new connection already.
        var evicted: Set<UInt64> = []
        var draining = false
        var acceptPaused = false
        var drainWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let registry = Mutex(Registry())
    /// Called to resume accepting once a slot frees after the cap paused the listener.
    let resumeAccepting: Mutex<(@Sendable () -> Void)?> = Mutex(nil)
    private let evictions = AtomicCounter()
    /// Request-body bytes HTTP/2 connections hold for their handlers, over all of them.
    private let bufferedBodies = Atomic<Int>(0)

    init(configuration: ServerConfiguration, router: Router, logger: Logger, filters: [any ExchangeFilter] = [],
         errorRenderer: @escaping @Sendable (any Error) -> Response, observer: (any RequestObserver)?) {
        self.configuration = configuration
        self.runner = ExchangeRunner(
            router: router, filters: filters, compressionMinimumBytes: configuration.compressionMinimumBytes,
            tooManyRequestsDelay: configuration.tooManyRequestsDelay,
            refusalPacer: configuration.refusalsBeforeDelay > 0
                ? RefusalPacer(limit: configuration.refusalsBeforeDelay, window: configuration.refusalWindow,
                               maxAddresses: configuration.maxRefusalAddresses) : nil,
            observer: observer, errorRenderer: errorRenderer
        )
        self.bodies = RequestBodyPolicy(configuration)
        self.logger = logger
        self.observer = observer
    }

    var isDraining: Bool { registry.withLock { $0.draining } }

    var openConnections: Int { registry.withLock { $0.connections.count } }

    /// Connections closed at the cap to make room for new ones.
    var evictedConnections: UInt64 { evictions.current }

    /// Request-body bytes HTTP/2 streams hold for their handlers now, over all connections.
    var bufferedBodyBytes: Int { bufferedBodies.load(ordering: .relaxed) }

    /// An HTTP/2 connection's held body bytes changed by `delta`.
    func bufferedBodyBytes(changedBy delta: Int) {
        bufferedBodies.add(delta, ordering: .relaxed)
    }

    /// Asked by the listener before each accept: whether a connection could be taken now (a
    /// slot is free, or an idle connection could make room). False pauses the listener until a
    /// slot frees.
    func mayAccept() -> Bool {
        registry.withLock { r in
            if r.slots < configuration.maxConnections || !r.idle.isEmpty { return true }
            r.acceptPaused = true
            return false
        }
    }

    /// Takes a slot for a connection just accepted: a free one, else that of the oldest idle
    /// connection, which is closed. False (the caller closes the socket) when every slot went to
    /// busy connections since `mayAccept`. So never more than `maxConnections` are admitted.
    func takeSlot() -> Bool {
        let (taken, victim) = registry.withLock { r -> (Bool, (any ConnectionHandler)?) in
            if r.slots < configuration.maxConnections {
                r.slots += 1
                return (true, nil)
            }
            guard let oldest = r.idle.min(by: { $0.value < $1.value })?.key, let handler = r.connections[oldest] else {
                r.acceptPaused = true
                return (false, nil)
            }
            r.idle.removeValue(forKey: oldest)
            r.evicted.insert(oldest)
            return (true, handler)
        }
        if let victim {
            evictions.increment()
            victim.connection.queue.async { victim.evict() }
        }
        return taken
    }

    private func resumeIfRoom(_ r: inout Registry) {
        if r.acceptPaused && !r.draining && r.slots < configuration.maxConnections {
            r.acceptPaused = false
            resumeAccepting.withLock { $0 }?()
        }
    }

    /// Registers a new connection; false when draining (the caller closes it).
    func connectionOpened(_ handler: any ConnectionHandler) -> Bool {
        let accepted = registry.withLock { r -> Bool in
            guard !r.draining else { return false }
            r.connections[handler.connection.id] = handler
            return true
        }
        if accepted { observer?.connectionOpened() }
        return accepted
    }

    /// An HTTP/2 stream opened or closed (for the open-streams gauge).
    func stream(opened: Bool) {
        if opened { observer?.streamOpened() } else { observer?.streamClosed() }
    }

    /// A connection changes protocol (HTTP/1.1 to HTTP/2): `handler` now answers for it.
    func connection(handedOverTo handler: any ConnectionHandler) {
        registry.withLock { r in
            let key = handler.connection.id
            if r.connections[key] != nil { r.connections[key] = handler }
        }
    }

    /// Whether a connection is waiting for a request with no byte of it received (evictable).
    /// - Returns: false when it was chosen for eviction already: its slot went to a new
    ///   connection, so it must close instead of serving what arrived (as nginx drops a reusable
    ///   connection). Choosing and leaving idle are decided under one lock, so a connection
    ///   never both serves and gives its slot away, and the cap stays hard.
    @discardableResult
    func connection(_ key: UInt64, isIdle idle: Bool) -> Bool {
        registry.withLock { r in
            guard r.connections[key] != nil else { return true }
            if !r.evicted.isEmpty && r.evicted.contains(key) { return false }
            if idle {
                r.idleSequence += 1
                r.idle[key] = r.idleSequence
                // Paused at the cap: an idle connection can now make room for a waiting one.
                if r.acceptPaused && !r.draining {
                    r.acceptPaused = false
                    resumeAccepting.withLock { $0 }?()
                }
            } else {
                r.idle.removeValue(forKey: key)
            }
            return true
        }
    }


    /// A connection closed (also one never registered because the server was draining).
    func connectionClosed(_ handler: any ConnectionHandler) {
        let (registered, waiters) = registry.withLock { r -> (Bool, [CheckedContinuation<Void, Never>]) in
            let key = handler.connection.id
            let registered = r.connections.removeValue(forKey: key) != nil
            r.idle.removeValue(forKey: key)
            if r.evicted.remove(key) == nil { r.slots -= 1 }
            resumeIfRoom(&r)
            if r.draining && r.connections.isEmpty {
                defer { r.drainWaiters.removeAll() }
                return (registered, r.drainWaiters)
            }
            return (registered, [])
        }
        if registered { observer?.connectionClosed() }
        for waiter in waiters { waiter.resume() }
    }

    /// Marks the server draining and tells every connection; returns once all have closed.
    func drainConnections() async {
        let handlers = registry.withLock { r -> [any ConnectionHandler] in
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

/// A connection's protocol handler as the server's registry sees it. Every call comes on its
/// connection's queue.
protocol ConnectionHandler: AnyObject, Sendable {
    /// The connection it serves.
    var connection: any ConnectionIO { get }
    /// Graceful drain: finish what is in flight, then close.
    func drain()
    /// Closes now.
    func close()
    /// Closed at the connection cap to make room, if it is still idle.
    func evict()
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
    /// An HTTP/2 stream carrying a request opened.
    func streamOpened()
    /// It closed.
    func streamClosed()
}

extension RequestObserver {
    public func connectionOpened() {}
    public func connectionClosed() {}
    public func streamOpened() {}
    public func streamClosed() {}
}
