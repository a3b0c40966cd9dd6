import HTTP2Wire
import HTTPWire
import Transport

/// HTTP/2 on one connection (RFC 9113), cleartext, through an nghttp2 session
/// (`HTTP2ServerSession`). Every stream is an exchange through the same runner, filters, router
/// and handlers as HTTP/1.1. Request bodies flow under HTTP/2 flow control: credit goes back to
/// the client as the handler takes the bytes. A long-poll's completions are committed only once
/// the frame that ends its answer was taken by the kernel, and requeued otherwise. Confined to
/// the connection's worker queue.
final class HTTP2ConnectionHandler: ConnectionDelegate, ConnectionHandler, @unchecked Sendable {
    // Safety: every property is touched only on `connection.queue`; handler tasks hop back to it.

    let connection: any ConnectionIO
    private let core: ServerCore
    private var configuration: ServerConfiguration { core.configuration }
    private let session: HTTP2ServerSession
    private var streams: [Int32: StreamExchange] = [:]
    /// Bytes handed to the connection so far: the session's output offset once written.
    private var handedOut: UInt64 = 0
    /// Bytes the kernel has taken of them.
    private var written: UInt64 = 0
    /// Answers whose last frame is serialised, waiting for the kernel to take it.
    private var pendingCommits: [(offset: UInt64, onWritten: @Sendable (Bool) -> Void)] = []
    private var closed = false
    private var draining = false
    private var flushing = false
    private var writable = true
    private var registeredIdle = false
    /// When the kernel last took a byte while some were waiting (write stall).
    private var lastWriteProgress = ContinuousClock.now

    /// Request-body bytes this connection's streams hold for their handlers, against
    /// `maxBufferedBodyPerConnection`; what was last reported to the server's gauge.
    private var budget: BodyBudget
    private var reportedBudget = 0
    /// Streams whose body is still arriving before an answer: their body timers run.
    private var openBodies: [Int32: StreamExchange] = [:]
    /// Streams holding credit back until the budget has room.
    private var starved: Set<Int32> = []

    /// One stream's exchange.
    private final class StreamExchange: @unchecked Sendable {
        // Safety: confined to the connection's queue like its handler.
        let id: Int32
        var request: Request
        var route: Route?
        var task: RunningHandler?
        var body: ExchangeBody
        var bodyDone: Bool
        var responded = false
        /// The answer's commit, until the kernel took its last frame (or the stream failed).
        var onWritten: (@Sendable (Bool) -> Void)?

        init(id: Int32, request: Request, bodyDone: Bool, body: ExchangeBody) {
            self.id = id
            self.request = request
            self.bodyDone = bodyDone
            self.body = body
        }
    }

    init(connection: any ConnectionIO, core: ServerCore, session: HTTP2ServerSession) {
        self.connection = connection
        self.core = core
        self.session = session
        budget = BodyBudget(cap: core.configuration.maxBufferedBodyPerConnection, window: session.limits.connectionWindow)
    }

    /// Takes the connection over from HTTP/1.1 after it saw the client preface: `received` is
    /// every byte read so far, preface included.
    func start(received: [UInt8]) {
        connection.start(delegate: self)
        received.withUnsafeBytes { receive($0) }
        flush()
    }

    /// Takes the connection over after answering `101 Switching Protocols` to an HTTP/1.1
    /// `Upgrade: h2c` request, which becomes stream 1 (it had no body); `received` holds the
    /// bytes read after that request (the client preface onwards).
    func startUpgraded(request head: RequestHead, received: [UInt8]) {
        connection.start(delegate: self)
        connection.write([HTTP2Upgrade.switchingProtocols], completion: nil)
        var fields = head.fields
        for name in ["Connection", "Upgrade", "HTTP2-Settings", "Keep-Alive"] { fields.remove(name) }
        open(stream: 1, head: HTTP2RequestHead(method: head.method, path: head.target, scheme: "http",
                                               authority: head.fields["Host"], fields: fields), endStream: true)
        received.withUnsafeBytes { receive($0) }
        flush()
    }

    // MARK: - ConnectionDelegate

    func connection(_ connection: any ConnectionIO, didRead bytes: UnsafeRawBufferPointer) {
        guard !closed else { return }
        receive(bytes)
        flush()
    }

    func connectionDidReachEOF(_ connection: any ConnectionIO) {
        guard !closed else { return }
        handle(session.connectionClosed())
        close()
    }

    func connection(_ connection: any ConnectionIO, writabilityChanged writable: Bool) {
        self.writable = writable
        if writable { flush() }
    }

    func connectionDidClose(_ connection: any ConnectionIO) {
        closed = true
        for exchange in streams.values {
            abandon(exchange)
            core.stream(opened: false)
        }
        streams.removeAll()
        let commits = pendingCommits
        pendingCommits.removeAll()
        for commit in commits { commit.onWritten(false) }
        openBodies.removeAll()
        starved.removeAll()
        reportBudget()
        core.connectionClosed(self)
    }

    // MARK: - Session events

    private func receive(_ bytes: UnsafeRawBufferPointer) {
        let result = session.receive(bytes)
        handle(result.events)
        if let failure = result.failure {
            core.logger.info("HTTP/2 connection ends", metadata: ["conn": "\(connection.id)", "reason": "\(failure)"])
        }
    }

    private func handle(_ events: [HTTP2Event]) {
        for event in events {
            switch event {
            case .request(let id, let head, let endStream):
                open(stream: id, head: head, endStream: endStream)
            case .requestRejected(let id, let status, let reason):
                let exchange = makeExchange(id: id, method: .get, bodyDone: true)
                streams[id] = exchange
                core.stream(opened: true)
                respond(ProblemResponse.make(.http(status, reason)), to: exchange)
            case .data(let id, let bytes, let endStream):
                guard let exchange = streams[id] else { continue }
                deliver(bytes, to: exchange)
                if endStream, streams[id] === exchange, !exchange.bodyDone {
                    exchange.bodyDone = true
                    openBodies[id] = nil
                    bodyFinished(exchange)
                }
            case .streamClosed(let id, let reason):
                guard let exchange = streams.removeValue(forKey: id) else { continue }
                core.stream(opened: false)
                openBodies[id] = nil
                releaseBody(exchange)
                if case .completed = reason, let commit = exchange.onWritten {
                    // Ended without its end offset reported: commit once all output so far is out.
                    exchange.onWritten = nil
                    pendingCommits.append((handedOut, commit))
                } else if case .completed = reason {
                } else {
                    abandon(exchange)
                }
                updateIdle()
            case .responseEndWritten(let id, let offset):
                if let exchange = streams[id], let commit = exchange.onWritten {
                    exchange.onWritten = nil
                    pendingCommits.append((offset, commit))
                }
                commitWritten()
            case .goAwayReceived, .goAwaySent:
                break
            }
        }
    }

    /// The client went away from this exchange (reset, or the connection ended).
    private func abandon(_ exchange: StreamExchange) {
        exchange.task?.cancel()
        releaseBody(exchange)
        if let commit = exchange.onWritten {
            exchange.onWritten = nil
            commit(false)
        }
    }

    private func open(stream id: Int32, head: HTTP2RequestHead, endStream: Bool) {
        let exchange = makeExchange(id: id, method: head.method, bodyDone: endStream)
        streams[id] = exchange
        core.stream(opened: true)
        guard updateIdle() else {
            close()  // evicted at the cap: the stream is not served
            return
        }
        // A malformed Accept-Encoding is ignored (identity), as on HTTP/1.1.
        let accepts = FieldList.acceptsGzip(head.fields)
        var request = Request(method: head.method, target: head.path, version: .http2, headers: head.fields,
                              acceptsGzip: accepts ?? false, acceptEncodingIgnored: accepts == nil, connectionID: connection.id,
                              peerAddress: connection.peerAddress)
        let routing = core.runner.route(&request)
        exchange.request = request
        switch routing {
        case .answer(let response):
            respond(response, to: exchange)
        case .held(let response):
            core.runner.hold(response, on: connection.queue) { response in self.respond(response, to: exchange) }
        case .route(let route):
            prepareBody(exchange, route: route)
        }
    }

    // MARK: - Bodies

    private func makeExchange(id: Int32, method: HTTPMethod, bodyDone: Bool) -> StreamExchange {
        StreamExchange(id: id, request: core.runner.unparsedRequest(method: method, connectionID: connection.id), bodyDone: bodyDone,
                       body: ExchangeBody(policy: core.bodies, now: .now, discardAllowance: .max))
    }

    /// Takes the route, chooses where the body goes and starts the handler when it can start.
    private func prepareBody(_ exchange: StreamExchange, route: Route) {
        exchange.route = route
        let declared = exchange.request.headers["Content-Length"].flatMap { UInt64($0) } ?? (exchange.bodyDone ? 0 : nil)
        let queue = connection.queue
        let capacity = configuration.streamingBodyBuffer
        let opening = exchange.body.open(for: exchange.request, bodyMode: route.bodyMode, declaredLength: declared,
                                         ended: exchange.bodyDone) { declared in
            BodyStream(declaredLength: declared, capacity: capacity, resumeProducer: { [weak self, weak exchange] in
                guard let self, let exchange else { return }
                queue.async { self.resumeBody(exchange) }
            })
        }
        switch opening {
        case .refused(let answer):
            respond(answer, to: exchange)
            return
        case .buffer:
            if exchange.bodyDone { bodyFinished(exchange) }
        case .stream(let stream):
            exchange.request.body = .stream(stream)
            run(exchange)
        }
        if !exchange.bodyDone && !exchange.responded { openBodies[exchange.id] = exchange }
    }

    /// Moves one DATA frame's bytes to the exchange's body. Credit goes back at once for bytes
    /// dropped; for bytes held, while the handler's buffer has room and the connection's budget
    /// is not spent, else once the handler takes them (see `resumeBody`, `retryStarved`).
    private func deliver(_ bytes: [UInt8], to exchange: StreamExchange) {
        let now = ContinuousClock.now
        exchange.body.arrived(bytes.count, now: now)
        let failure = bytes.withUnsafeBytes { exchange.body.deliver($0, now: now, budget: &budget) }
        session.consume(stream: exchange.id, bytes: exchange.body.credit(bytes.count, now: now, budget: budget))
        if exchange.body.isWaitingForBudget { starved.insert(exchange.id) }
        if let failure { refuseBody(exchange, failure) }
    }

    /// A streamed handler drained its buffer: inflating and credit go on.
    private func resumeBody(_ exchange: StreamExchange) {
        guard streams[exchange.id] === exchange, exchange.body.isPaused else { return }
        let now = ContinuousClock.now
        if let failure = exchange.body.resume(now: now, budget: &budget) {
            refuseBody(exchange, failure)
            flush()
            return
        }
        guard !exchange.body.isPaused else { return }  // full again: the stream calls back
        if exchange.bodyDone, exchange.body.inflater != nil { bodyFinished(exchange) }
        session.consume(stream: exchange.id, bytes: exchange.body.resumedCredit(now: now, budget: budget))
        if exchange.body.isWaitingForBudget { starved.insert(exchange.id) }
        retryStarved()
        flush()
    }

    /// Gives back the credit held for the budget's sake while the budget has room (streamed
    /// bodies' holdings brought up to date first: their handlers read without telling).
    private func retryStarved() {
        guard !starved.isEmpty else { return }
        for exchange in openBodies.values { exchange.body.refreshCharge(budget: &budget) }
        let now = ContinuousClock.now
        for id in starved.sorted() {
            guard budget.allowsCredit else { break }
            guard let exchange = streams[id] else {
                starved.remove(id)
                continue
            }
            session.consume(stream: id, bytes: exchange.body.retryCredit(now: now, budget: &budget))
            if !exchange.body.isWaitingForBudget { starved.remove(id) }
        }
    }

    /// The body is no longer wanted: what it holds leaves the budget, its credit goes back.
    private func releaseBody(_ exchange: StreamExchange) {
        session.consume(stream: exchange.id, bytes: exchange.body.drop(allowance: .max, budget: &budget, now: .now))
        starved.remove(exchange.id)
        retryStarved()
    }

    /// A body the server will not take: the answer goes out, the rest of the body is dropped.
    private func refuseBody(_ exchange: StreamExchange, _ error: HTTPError) {
        releaseBody(exchange)
        exchange.task?.cancel()
        openBodies[exchange.id] = nil
        if !exchange.responded { respond(ProblemResponse.make(error), to: exchange) }
    }

    private func bodyFinished(_ exchange: StreamExchange) {
        switch exchange.body.finish(budget: &budget) {
        case .waiting, .streamEnded, .discarded:
            break
        case .refused(let error):
            refuseBody(exchange, error)
        case .buffered(let bytes):
            exchange.request.body = bytes.isEmpty ? .empty : .buffered(bytes)
            retryStarved()
            run(exchange)
        }
    }

    /// Bodies whose timer is due: one stalled (nothing for `bodyTimeout`) or too slow is cut,
    /// answered 408 where an answer can still be sent, else reset; the other streams go on.
    private func checkBodyTimers(now: ContinuousClock.Instant) {
        guard !openBodies.isEmpty else { return }
        for exchange in openBodies.values.sorted(by: { $0.id < $1.id }) where exchange.body.deadline(now: now) <= now {
            guard let refusal = exchange.body.timerFired(now: now) else { continue }
            openBodies[exchange.id] = nil
            if exchange.responded {
                releaseBody(exchange)
                session.resetStream(exchange.id, code: .cancel)
            } else {
                refuseBody(exchange, refusal)
            }
        }
        retryStarved()
    }

    /// Tells the server's gauge what the budget holds now.
    private func reportBudget() {
        guard budget.held != reportedBudget else { return }
        core.bufferedBodyBytes(changedBy: budget.held - reportedBudget)
        reportedBudget = budget.held
    }

    // MARK: - Handlers and answers

    private func run(_ exchange: StreamExchange) {
        guard let route = exchange.route else { return }
        let invocation = core.runner.invoke(route, exchange.request, on: connection.queue) {
            { response in self.respond(response, to: exchange) }
        }
        switch invocation {
        case .answered(let response):
            respond(response, to: exchange)
            return
        case .waiting(let handle):
            exchange.task = handle
        }
        if draining && route.interruptibleOnDrain { exchange.task?.cancel() }
    }

    private func respond(_ response: Response, to exchange: StreamExchange) {
        guard !closed, streams[exchange.id] === exchange, !exchange.responded else {
            response.onWritten?(false)
            return
        }
        var response = response
        core.runner.willRespond(&response, to: exchange.request)
        exchange.responded = true
        if !exchange.bodyDone {
            // Answered before the body ended: the rest is dropped, its credit given back.
            openBodies[exchange.id] = nil
            releaseBody(exchange)
        }
        let framing = ResponseFraming(response, method: exchange.request.method)
        do {
            try session.respond(stream: exchange.id, status: framing.status, fields: framing.fields,
                                body: framing.sendsBody && !response.body.isEmpty ? .whole(response.body) : .none)
            exchange.onWritten = framing.commit
        } catch {
            response.onWritten?(false)
        }
        core.runner.didRespond(to: exchange.request, status: framing.status, bodyBytes: framing.sentBodyBytes)
        flush()
    }

    // MARK: - Output

    /// Hands the session's output to the connection while it takes it, then arms the timer.
    private func flush() {
        guard !flushing, !closed else { return }
        flushing = true
        defer { flushing = false }
        while !closed, writable {
            let output = session.takeOutput()
            if handedOut == written { lastWriteProgress = .now }
            handedOut += UInt64(output.bytes.count)
            let upTo = handedOut
            if !output.bytes.isEmpty {
                connection.write([output.bytes]) { [weak self] ok in self?.wrote(upTo: upTo, ok: ok) }
            }
            handle(output.events)
            if output.bytes.isEmpty { break }
        }
        guard !closed else { return }
        reportBudget()
        // Finished: gracefully once the streams are done; after a fatal error (its GOAWAY taken)
        // at once, since the session reads no more and the streams it left open cannot end.
        if session.isFinished && (streams.isEmpty || session.failure != nil) {
            connection.closeAfterFlush()
            return
        }
        armTimer()
    }

    private func wrote(upTo offset: UInt64, ok: Bool) {
        guard ok else { return }  // connectionDidClose requeues what is pending
        written = max(written, offset)
        lastWriteProgress = .now
        commitWritten()
    }

    /// Commits every answer whose last frame the kernel has taken.
    private func commitWritten() {
        guard pendingCommits.contains(where: { $0.offset <= written }) else { return }
        let due = pendingCommits.filter { $0.offset <= written }
        pendingCommits.removeAll { $0.offset <= written }
        for commit in due { commit.onWritten(true) }
    }

    // MARK: - Timers and lifecycle

    private func armTimer() {
        let now = ContinuousClock.now
        var due = session.nextDeadline()
        if handedOut > written {
            let stall = lastWriteProgress + configuration.writeTimeout
            due = due.map { min($0, stall) } ?? stall
        }
        for exchange in openBodies.values {
            let body = exchange.body.deadline(now: now)
            due = due.map { min($0, body) } ?? body
        }
        if !starved.isEmpty {
            // Streamed handlers read without telling: look again at the budget soon.
            let retry = now + .milliseconds(250)
            due = due.map { min($0, retry) } ?? retry
        }
        guard let due else {
            connection.clearTimer()
            return
        }
        connection.setTimer(after: max(.zero, due - now)) { [weak self] in self?.timerFired() }
    }

    private func timerFired() {
        guard !closed else { return }
        if handedOut > written, ContinuousClock.now - lastWriteProgress >= configuration.writeTimeout {
            core.logger.warning("write stalled: closing", metadata: ["conn": "\(connection.id)"])
            close()
            return
        }
        if let failure = session.timerFired() {
            core.logger.info("HTTP/2 connection ends", metadata: ["conn": "\(connection.id)", "reason": "\(failure)"])
        }
        checkBodyTimers(now: .now)
        flush()
    }

    /// Tells the registry whether no stream is open; false when the connection was chosen for
    /// eviction meanwhile (it must close).
    @discardableResult
    private func updateIdle() -> Bool {
        let idle = streams.isEmpty
        guard idle != registeredIdle else { return true }
        registeredIdle = idle
        return core.connection(connection.id, isIdle: idle)
    }

    /// Graceful drain: GOAWAY with the last stream id; streams in flight finish (long-polls
    /// answer at once), then the connection closes.
    func drain() {
        draining = true
        session.goAway(graceful: true)
        for exchange in streams.values where exchange.route?.interruptibleOnDrain == true { exchange.task?.cancel() }
        flush()
    }

    /// Closed by the server at its connection cap to make room (it had no stream when chosen,
    /// and `updateIdle` keeps it from taking one since).
    func evict() {
        close()
    }

    /// Closes now.
    func close() {
        guard !closed else { return }
        connection.close()
    }
}
