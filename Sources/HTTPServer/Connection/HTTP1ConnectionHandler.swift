import HTTP2Wire
import HTTPWire
import Transport

/// One HTTP/1.1 connection: feeds the socket's events to its `HTTP1ConnectionMachine` and
/// performs the machine's actions against the connection, the exchange runner and the server's
/// registry. The protocol itself is all in the machine. Confined to the connection's worker queue.
final class HTTP1ConnectionHandler: ConnectionDelegate, ConnectionHandler, @unchecked Sendable {
    // Safety: every property is touched only on `connection.queue`, except from the tasks that
    // run async handlers and the body streams' consumers, which hop back to that queue first.

    let connection: any ConnectionIO
    private let core: ServerCore
    private let machine: HTTP1ConnectionMachine
    /// The handler of the exchange being served, to cancel when its client goes away, and its
    /// body stream, held until the handler answers. (The stream is also in the request the handler
    /// holds, but inside an enum whose tag LeakSanitizer cannot see past: without this plain
    /// reference, a handler still finishing after its connection closed shows as a leak.)
    private var running: (exchange: UInt64, handle: RunningHandler?, body: BodyStream?)?

    init(connection: any ConnectionIO, core: ServerCore) {
        self.connection = connection
        self.core = core
        machine = HTTP1ConnectionMachine(
            configuration: core.configuration, runner: core.runner, bodies: core.bodies, connectionID: connection.id,
            peerAddress: connection.peerAddress, now: .now, date: { DateCache.shared.current() }
        )
        // The machine is this handler's alone and performs actions only during the handler's own
        // calls into it, so the handler is alive whenever this runs: no reference counting per
        // action (a checked `unowned` costs two atomic operations on the side-table path each, and
        // even `unowned(unsafe)` retained the handler around every call).
        let driver = Unmanaged.passUnretained(self)
        machine.perform = { action in driver._withUnsafeGuaranteedRef { $0.perform(action) } }
        let queue = connection.queue
        machine.wake = { [weak self] wakeup in
            guard let self else { return }
            queue.async { self.machine.wakeup(wakeup, now: .now) }
        }
    }

    /// Starts serving.
    func start() {
        connection.start(delegate: self)
        machine.start(now: .now)
    }

    /// Whether a request is being served (its answer or its body still pending).
    var isServing: Bool { machine.isServing }

    /// Closed by the server at its connection cap to make room (it was idle when chosen, and
    /// leaving idle since was refused, so it has served nothing since).
    func evict() {
        machine.close(now: .now)
    }

    // MARK: - ConnectionDelegate

    func connection(_ connection: any ConnectionIO, didRead bytes: UnsafeRawBufferPointer) {
        machine.bytesRead(bytes, now: .now)
    }

    func connectionDidReachEOF(_ connection: any ConnectionIO) {
        machine.peerFinishedSending(now: .now)
    }

    func connection(_ connection: any ConnectionIO, writabilityChanged writable: Bool) {}

    func connectionDidClose(_ connection: any ConnectionIO) {
        machine.connectionClosed(now: .now)
        core.connectionClosed(self)
    }

    // MARK: - The machine's actions

    private func perform(_ action: HTTP1Action) {
        switch action {
        case .write(let bytes, nil):
            connection.write([bytes])
        case .write(let bytes, let completion?):
            connection.write([bytes]) { [weak self] ok in
                completion.onWritten?(ok)
                self?.machine.writeCompleted(completion, ok: ok, now: .now)
            }
        case .closeAfterFlush:
            connection.closeAfterFlush()
        case .close:
            connection.close()
        case .pauseReading:
            connection.pauseReading()
        case .resumeReading:
            connection.resumeReading()
        case .setTimer(let delay, _):
            let mark = connection.totalBytesWritten
            connection.setTimer(after: delay) { [weak self] in
                guard let self else { return }
                self.machine.timerFired(now: .now, wroteSinceArmed: self.connection.totalBytesWritten > mark)
            }
        case .clearTimer:
            connection.clearTimer()
        case .setIdle(let idle):
            // Refused leaving idle: chosen for eviction at the cap, so what arrived is not served.
            if !core.connection(connection.id, isIdle: idle) && !idle { machine.close(now: .now) }
        case .invoke(let exchange, let route):
            let id = exchange.id
            var body: BodyStream?
            if case .stream(let stream) = exchange.request.body { body = stream }
            running = (id, nil, body)
            let invocation = core.runner.invoke(route, exchange.request, on: connection.queue) {
                { response in self.handlerFinished(id, response) }
            }
            switch invocation {
            case .answered(let response): handlerFinished(id, response)
            case .waiting(let handle): if running?.exchange == id { running?.handle = handle }  // unless it answered meanwhile
            }
        case .hold(let id, let response):
            core.runner.hold(response, on: connection.queue) { response in self.handlerFinished(id, response) }
        case .cancelHandler(let id):
            if let running, running.exchange == id { running.handle?.cancel() }
        case .responded(let exchange, let status, let bodyBytes):
            core.runner.didRespond(to: exchange.request, status: status, bodyBytes: bodyBytes)
        case .undelivered(let response):
            response.onWritten?(false)
        case .writeStalled:
            core.logger.warning("write stalled: closing", metadata: ["conn": "\(connection.id)"])
        case .handOff(.priorKnowledge(let session, let received)):
            let handler = HTTP2ConnectionHandler(connection: connection, core: core, session: session)
            core.connection(handedOverTo: handler)
            handler.start(received: received)
        case .handOff(.upgrade(let session, let head, let received)):
            let handler = HTTP2ConnectionHandler(connection: connection, core: core, session: session)
            core.connection(handedOverTo: handler)
            handler.startUpgraded(request: head, received: received)
        }
    }

    /// A handler's answer, on the queue (inline, during `invoke`, when it did not wait).
    private func handlerFinished(_ id: UInt64, _ response: Response) {
        if let running, running.exchange == id { self.running = nil }
        machine.handlerFinished(id, response, now: .now)
    }

    // MARK: - Lifecycle

    /// Graceful drain: idle connections close now, busy ones after their response; long-polls
    /// are interrupted so that they answer at once.
    func drain() {
        machine.drain(now: .now)
    }

    /// Closes now.
    func close() {
        machine.close(now: .now)
    }
}
