import HTTP2Wire
import HTTPWire

/// What the HTTP/1.1 machine asks its driver to do. The driver performs each at once, in order,
/// and reports back through the machine's events (a write's completion, a timer, a handler's answer).
enum HTTP1Action {
    /// Queue these bytes; with a completion, report it through `writeCompleted`.
    case write([UInt8], HTTP1WriteCompletion?)
    /// Close once everything queued has been sent.
    case closeAfterFlush
    /// Close now; report it through `connectionClosed` (it may come back during this action).
    case close
    case pauseReading
    case resumeReading
    /// Arm the connection's one timer to fire this long after the event's time (replacing the one
    /// armed); when it fires, report it through `timerFired`, saying whether the kernel took any
    /// byte since it was armed. (A delay, not a `ContinuousClock.Instant`: that type's layout is
    /// resilient, and an action carrying one would be copied and switched on through the runtime.)
    case setTimer(after: Duration, HTTP1Timeout)
    case clearTimer
    /// Tell the registry the connection is waiting for a request with no byte of it received (or
    /// no longer is). A connection refused leaving idle (evicted at the cap) is to be closed.
    case setIdle(Bool)
    /// Run this route's handler on the exchange's request; give its answer to `handlerFinished`
    /// with the exchange's id.
    case invoke(HTTP1ConnectionMachine.Exchange, Route)
    /// Give this answer to `handlerFinished` with the exchange's id once `ExchangeRunner.hold`
    /// delivers it (a refusal held as a 429 is).
    case hold(UInt64, Response)
    /// The client is gone, or the server drains: cancel this exchange's handler if it still runs.
    case cancelHandler(UInt64)
    /// An answer was queued (metrics and the request log).
    case responded(HTTP1ConnectionMachine.Exchange, status: Int, bodyBytes: Int)
    /// An answer came too late to be sent: what it carried goes back (`onWritten(false)`).
    case undelivered(Response)
    /// The client took no byte of a response for the write timeout (logged; `close` follows).
    case writeStalled
    /// The connection speaks HTTP/2 from now on: give it to an HTTP/2 handler. The machine is done.
    case handOff(HTTP1HandOff)
}

/// What a response's write completion carries back.
struct HTTP1WriteCompletion {
    let exchange: UInt64
    /// The response's commit-or-requeue (`ResponseFraming.commit`), called with whether the write
    /// finished.
    let onWritten: (@Sendable (Bool) -> Void)?
}

/// Which timeout a deadline stands for.
enum HTTP1Timeout: Equatable {
    /// The head (from accept, or from the first byte of a later request): `headerTimeout`.
    case head
    /// Keep-alive between requests: `idleTimeout`.
    case idle
    /// The body: `bodyTimeout` since the last read, and the minimum data rate checked each second.
    case body
    /// A response the client does not take: `writeTimeout` without progress.
    case writeStall
}

/// How the connection becomes HTTP/2.
enum HTTP1HandOff {
    /// The client preface came instead of a request line; `received` begins with it.
    case priorKnowledge(HTTP2ServerSession, received: [UInt8])
    /// `Upgrade: h2c` (RFC 7540 §3.2): answer 101, then this request is stream 1.
    case upgrade(HTTP2ServerSession, RequestHead, received: [UInt8])
}

/// What a request body's consumer asks, from any thread: the driver hops to the connection's
/// queue and gives it to the machine.
enum HTTP1Wakeup: Sendable {
    /// The handler began reading the body (time for `100 Continue`).
    case bodyWanted(UInt64)
    /// The handler drained the body's buffer (reading may resume).
    case bodyDrained(UInt64)
}

/// The HTTP/1.1 protocol of one connection (RFC 9112), sans I/O: bytes and events in, actions
/// out. Parses heads, frames and delivers bodies, serves one request at a time (pipelined
/// requests wait in the input buffer and are answered in order), decides persistence, sends
/// `100 Continue`, expresses every timeout as a deadline, answers what it cannot parse, and
/// detects h2c. It performs no I/O, holds no queue, starts no task and reads no clock: each
/// event brings the time. It uses the exchange layer's pure parts (routing, filters, body
/// policy) directly; everything with an effect is an action, performed by `perform` before the
/// machine goes on, so a handler that answers inline is served exactly as if it waited.
///
/// Not thread-safe: one driver calls it (the connection's queue).
final class HTTP1ConnectionMachine {
    private let configuration: ServerConfiguration
    private let runner: ExchangeRunner
    private let bodies: RequestBodyPolicy
    private let connectionID: UInt64
    private let peerAddress: String?
    /// The Date field's value now (the driver's cache; a fixed text in tests).
    private let date: () -> String
    /// Performs an action (the driver), at once.
    var perform: (HTTP1Action) -> Void = { _ in }
    /// Carries a body consumer's wakeup to the machine (the driver, through its queue).
    var wake: @Sendable (HTTP1Wakeup) -> Void = { _ in }

    /// The time the current event brought.
    private var now: ContinuousClock.Instant
    private var parser: RequestHeadParser
    /// Bytes received and not yet consumed (a partial head, or pipelined requests).
    private var input = InputBuffer()
    private var state = State.idle(headStarted: false)
    private var draining = false
    /// The peer finished sending (EOF) while body bytes it sent still wait in `input`.
    private var peerFinished = false
    /// What the registry was last told: waiting for a request, no byte of it received.
    private var registeredIdle = false
    /// Whether a request has begun on this connection (HTTP/2 is taken only before the first).
    private var begunAny = false
    /// `closeAfterFlush` was asked.
    private var closing = false
    /// What the armed timer stands for (one timer per connection: arming replaces it).
    private var armed: Armed?
    private var exchangeSerial: UInt64 = 0
    /// One body at a time: bounded by its own limits, no connection cap.
    private var budget = BodyBudget.unbounded

    private enum Armed {
        case head, idle
        case body(UInt64)
        case writeStall(UInt64)
    }

    private enum State {
        /// Waiting for (the rest of) a request head.
        case idle(headStarted: Bool)
        /// A request is being served.
        case busy(Exchange)
        /// The connection is closing or closed (or was handed to HTTP/2).
        case closed
    }

    /// Remaining framing of a request body.
    fileprivate enum BodyFramingState {
        case done
        case length(remaining: UInt64)
        case chunked(ChunkedDecoder)
    }

    /// One request/response exchange.
    /// One request and what the machine knows of it. Actions carry it by reference, not its
    /// request by value: a `Request` copied into an action and out again costs a retain of every
    /// field each time. The driver reads only `id` and `request`; the rest is the machine's.
    final class Exchange {
        let id: UInt64
        var request: Request
        /// The HTTP/1.1 head: framing, persistence, `Expect`.
        let head: RequestHead
        var route: Route?
        var keepAlive: Bool
        fileprivate var framing: BodyFramingState
        /// The body: sink, inflater, limits, timer (the core HTTP/2 shares).
        var body: ExchangeBody
        var responseQueued = false
        var responseWritten = false
        /// Whether `100 Continue` was sent.
        var continueSent = false

        fileprivate init(id: UInt64, request: Request, head: RequestHead, keepAlive: Bool, framing: BodyFramingState, body: ExchangeBody) {
            self.id = id
            self.request = request
            self.head = head
            self.keepAlive = keepAlive
            self.framing = framing
            self.body = body
        }

        var bodyDone: Bool { if case .done = framing { true } else { false } }
    }

    init(configuration: ServerConfiguration, runner: ExchangeRunner, bodies: RequestBodyPolicy, connectionID: UInt64,
         peerAddress: String? = nil, now: ContinuousClock.Instant, date: @escaping () -> String) {
        self.configuration = configuration
        self.runner = runner
        self.bodies = bodies
        self.connectionID = connectionID
        self.peerAddress = peerAddress
        self.now = now
        self.date = date
        self.parser = RequestHeadParser(limits: configuration.parserLimits)
    }

    /// Whether a request is being served (its answer or its body still pending).
    var isServing: Bool {
        if case .busy = state { return true }
        return false
    }

    /// Whether the machine is done: closed, closing, or handed to HTTP/2.
    var isClosed: Bool {
        if case .closed = state { return true }
        return false
    }

    /// Whether the connection is open and not on its way to closing, as far as the machine asked.
    private var isOpen: Bool { !isClosed && !closing }

    private func nextExchangeID() -> UInt64 {
        exchangeSerial &+= 1
        return exchangeSerial
    }

    // MARK: - Events

    /// The connection was accepted. The head timeout runs from now: a connection that sends
    /// nothing is closed after `headerTimeout`, not held for the idle timeout.
    func start(now: ContinuousClock.Instant) {
        self.now = now
        state = .idle(headStarted: true)
        setIdle(true)
        setTimer(at: now + configuration.headerTimeout, .head)
    }

    /// Bytes arrived (only valid during the call).
    func bytesRead(_ bytes: UnsafeRawBufferPointer, now: ContinuousClock.Instant) {
        self.now = now
        switch state {
        case .closed:
            return
        case .idle:
            setIdle(false)
            if isClosed { return }  // evicted at the cap: what arrived is not served
            input.append(bytes)
            processInput()
        case .busy(let exchange):
            if exchange.bodyDone {
                input.append(bytes)
                limitPipelinedInput()
            } else if input.isEmpty {
                // The common case of a large upload: frame the body straight from the read
                // buffer and keep only what is left over.
                let result = frame(exchange, bytes)
                if case .consumed(let n) = result, n < bytes.count { input.append(UnsafeRawBufferPointer(rebasing: bytes[n...])) }
                framed(exchange, result)
                if case .busy(let current) = state, current === exchange, !input.isEmpty {
                    feedBody(exchange)
                } else if exchange.bodyDone {
                    limitPipelinedInput()
                }
            } else {
                input.append(bytes)
                feedBody(exchange)
            }
        }
    }

    /// The peer finished sending (EOF, or a reset).
    func peerFinishedSending(now: ContinuousClock.Instant) {
        self.now = now
        switch state {
        case .closed:
            return
        case .idle:
            close()
        case .busy(let exchange):
            exchange.keepAlive = false
            if !exchange.bodyDone && inputMayCompleteBody(exchange) {
                // The whole body may be in `input` (reading was paused for the handler, then the
                // client finished sending): it is delivered as the handler takes it.
                peerFinished = true
                return
            }
            abandon(exchange)
        }
    }

    /// The connection closed; nothing more will come.
    func connectionClosed(now: ContinuousClock.Instant) {
        self.now = now
        if case .busy(let exchange) = state {
            perform(.cancelHandler(exchange.id))
            exchange.body.failStream()
        }
        state = .closed
        input.removeAll()
    }

    /// The armed timer fired; `wroteSinceArmed` says whether the kernel took a byte since it was armed.
    func timerFired(now: ContinuousClock.Instant, wroteSinceArmed: Bool) {
        self.now = now
        guard let fired = armed else { return }
        armed = nil
        switch fired {
        case .head: headTimedOut()
        case .idle: close()
        case .body(let id): bodyTimerFired(id)
        case .writeStall(let id): writeStallTimerFired(id, wroteSinceArmed: wroteSinceArmed)
        }
    }

    /// A write with a completion finished: all sent (`ok`) or the connection closed first.
    func writeCompleted(_ completion: HTTP1WriteCompletion, ok: Bool, now: ContinuousClock.Instant) {
        self.now = now
        guard ok, case .busy(let exchange) = state, exchange.id == completion.exchange else { return }
        exchange.responseWritten = true
        completeIfDone(exchange)
    }

    /// An exchange's handler answered.
    func handlerFinished(_ id: UInt64, _ response: Response, now: ContinuousClock.Instant) {
        self.now = now
        guard case .busy(let exchange) = state, exchange.id == id else {
            perform(.undelivered(response))
            return
        }
        respond(response, to: exchange)
    }

    /// A body consumer's wakeup, back on the driver's queue.
    func wakeup(_ wakeup: HTTP1Wakeup, now: ContinuousClock.Instant) {
        self.now = now
        guard case .busy(let exchange) = state else { return }
        switch wakeup {
        case .bodyWanted(let id) where id == exchange.id: handlerWantsBody(exchange)
        case .bodyDrained(let id) where id == exchange.id: resumeBodyReading(exchange)
        default: return
        }
    }

    /// Graceful drain: idle connections close now, busy ones after their response; long-polls
    /// are interrupted so that they answer at once.
    func drain(now: ContinuousClock.Instant) {
        self.now = now
        draining = true
        switch state {
        case .closed:
            return
        case .idle:
            close()
        case .busy(let exchange):
            exchange.keepAlive = false
            if exchange.responseWritten {
                close()  // answered; only an unread body was left to skip
            } else if exchange.route?.interruptibleOnDrain == true {
                perform(.cancelHandler(exchange.id))
            }
        }
    }

    /// Closes now (eviction at the cap, the server closing everything, a timeout).
    func close(now: ContinuousClock.Instant) {
        self.now = now
        close()
    }

    // MARK: - Actions

    private func close() {
        if case .closed = state { return }
        perform(.close)
        connectionClosed(now: now)  // already done if the driver reported the close during the action
    }

    private func closeAfterFlush() {
        closing = true
        perform(.closeAfterFlush)
    }

    private func setTimer(at deadline: ContinuousClock.Instant, _ timer: Armed) {
        armed = timer
        let kind: HTTP1Timeout = switch timer {
        case .head: .head
        case .idle: .idle
        case .body: .body
        case .writeStall: .writeStall
        }
        perform(.setTimer(after: deadline - now, kind))
    }

    private func clearTimer() {
        armed = nil
        perform(.clearTimer)
    }

    private func setIdle(_ idle: Bool) {
        guard idle != registeredIdle else { return }
        registeredIdle = idle
        perform(.setIdle(idle))
    }

    /// Gives the connection to HTTP/2, with the bytes not yet consumed; the machine is then done.
    private func handOver(_ handOff: ([UInt8]) -> HTTP1HandOff) {
        let received = input.withUnsafeBytes { Array($0) }
        input.removeAll()
        setIdle(false)
        state = .closed
        clearTimer()
        perform(.handOff(handOff(received)))
    }

    private func headTimedOut() {
        guard case .idle = state else { return }
        if input.isEmpty {
            close()  // nothing was sent: nothing to answer
        } else {
            fail(.http(408, "request head not received in time", closeConnection: true))
        }
    }

    /// Whether the buffered input could hold the rest of the body: enough bytes for a declared
    /// length, or what ends like the last chunk of a chunked body.
    private func inputMayCompleteBody(_ exchange: Exchange) -> Bool {
        switch exchange.framing {
        case .done: return true
        case .length(let remaining): return UInt64(input.count) >= remaining
        case .chunked(var decoder):
            // A dry run of the decoder over what is buffered: does the body end in it?
            let progress = input.withUnsafeBytes { buffered in try? decoder.decode(buffered) { _ in } }
            return progress?.finished ?? true
        }
    }

    /// The client is gone, or half-closed. Before its body was complete: the body fails and the
    /// connection closes. After: a handler that only waits (a long-poll, a `Prefer: wait`) stops
    /// waiting on its behalf, one that works on a request it has in full (an append) finishes, and
    /// the answer is written if the socket takes it; the connection then closes.
    private func abandon(_ exchange: Exchange) {
        guard exchange.bodyDone else {
            exchange.body.failStream()
            perform(.cancelHandler(exchange.id))
            close()
            return
        }
        if exchange.route?.interruptibleOnDrain == true { perform(.cancelHandler(exchange.id)) }
        if exchange.responseQueued { closeAfterFlush() }
    }

    // MARK: - Heads

    /// Whether `processInput` is running (answering a request can finish it and ask for the next).
    private var processingInput = false
    private var processAgain = false

    /// Parses as many requests as the buffered input holds, one at a time. A request answered
    /// inline asks for the next one from inside this call; that request is taken by this loop
    /// rather than by recursion, so thousands of pipelined requests use constant stack.
    private func processInput() {
        if processingInput {
            processAgain = true
            return
        }
        processingInput = true
        defer { processingInput = false }
        repeat {
            processAgain = false
            processNextHead()
        } while processAgain
    }

    private func processNextHead() {
        guard case .idle = state else { return }
        if input.isEmpty {
            if case .idle(headStarted: false) = state { setIdle(true) }
            return
        }
        if !begunAny {
            // h2c by prior knowledge: the client preface instead of a request line.
            switch input.withUnsafeBytes({ HTTP2Upgrade.looksLikePreface($0) }) {
            case true?:
                let session = HTTP2ServerSession(limits: configuration.http2Limits)
                handOver { .priorKnowledge(session, received: $0) }
                return
            case nil:
                headStarted()
                return
            case false?:
                break
            }
        }
        let result: RequestHeadParser.Result
        do {
            result = try input.withUnsafeBytes { buf throws(HTTP1ParseError) in try parser.parse(buf) }
        } catch {
            fail(HTTPError.from(error))
            return
        }
        switch result {
        case .needMore:
            headStarted()
        case .complete(let head, let consumed):
            input.consume(consumed)
            begin(head)
        }
    }

    /// The first bytes of a head arrived: the head timeout runs from now.
    private func headStarted() {
        guard case .idle(headStarted: false) = state else { return }
        state = .idle(headStarted: true)
        setTimer(at: now + configuration.headerTimeout, .head)
    }

    private func begin(_ head: RequestHead) {
        clearTimer()
        if !begunAny, case .none = head.framing, let settings = HTTP2Upgrade.settingsPayload(from: head.fields),
           let session = HTTP2ServerSession(upgradeWithSettings: settings, headRequest: head.method == .head, limits: configuration.http2Limits) {
            // Upgrade: h2c (RFC 7540 §3.2): 101, then HTTP/2 with this request as stream 1.
            handOver { .upgrade(session, head, received: $0) }
            return
        }
        begunAny = true
        let keepAlive = head.keepAlive && !draining
        var framing: BodyFramingState
        switch head.framing {
        case .none, .length(0): framing = .done
        case .length(let n): framing = .length(remaining: n)
        case .chunked: framing = .chunked(ChunkedDecoder(maxTrailerBytes: configuration.parserLimits.maxTrailerBytes))
        }
        let exchange = Exchange(id: nextExchangeID(), request: Request(head: head, connectionID: connectionID, peerAddress: peerAddress, receivedAt: now),
                                head: head, keepAlive: keepAlive, framing: framing,
                                body: ExchangeBody(policy: bodies, now: now, discardAllowance: configuration.maxDrainBytes))
        state = .busy(exchange)
        let routing = runner.route(&exchange.request)
        switch routing {
        case .answer(let response):
            respond(response, to: exchange)
        case .held(let response):
            perform(.hold(exchange.id, response))
        case .route(let route):
            prepareBody(exchange, route: route)
        }
        if case .busy(let current) = state, current === exchange, !exchange.bodyDone {
            feedBody(exchange)
        } else {
            limitPipelinedInput()
        }
    }

    /// Takes the route, chooses where the body goes and starts the handler when it can start.
    private func prepareBody(_ exchange: Exchange, route: Route) {
        exchange.route = route
        let head = exchange.head
        if route.bodyMode == .streamed, case .none = head.framing {
            respond(ProblemResponse.make(.http(411, "a Content-Length or chunked body is required")), to: exchange)
            return
        }
        var declared: UInt64?
        if case .length(let n) = head.framing { declared = n }
        // The stream's callbacks carry only the exchange's id: a stream that outlives its
        // exchange wakes nothing.
        let wake = self.wake
        let id = exchange.id
        let capacity = configuration.streamingBodyBuffer
        let opening = exchange.body.open(for: exchange.request, bodyMode: route.bodyMode, declaredLength: declared,
                                         ended: exchange.bodyDone) { declared in
            BodyStream(
                declaredLength: declared, capacity: capacity,
                // `100 Continue` only once the handler asks for the body: a request refused
                // from its head gets none (RFC 9110 §10.1.1).
                onFirstRead: { wake(.bodyWanted(id)) },
                resumeProducer: { wake(.bodyDrained(id)) }
            )
        }
        switch opening {
        case .refused(let answer):
            respond(answer, to: exchange)
        case .buffer:
            if exchange.bodyDone {
                exchange.request.body = .empty
                run(exchange)
                return
            }
            sendContinueIfExpected(exchange)
            armBodyTimer(exchange)
        case .stream(let stream):
            exchange.request.body = .stream(stream)
            if !exchange.bodyDone { armBodyTimer(exchange) }
            run(exchange)
        }
    }

    private func handlerWantsBody(_ exchange: Exchange) {
        guard !exchange.responseQueued, !exchange.bodyDone else { return }
        sendContinueIfExpected(exchange)
    }

    private func sendContinueIfExpected(_ exchange: Exchange) {
        guard exchange.head.expectsContinue, !exchange.continueSent else { return }
        exchange.continueSent = true
        perform(.write(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8), nil))
    }

    // MARK: - Bodies

    /// Moves body bytes from `input` into the exchange's sink.
    private func feedBody(_ exchange: Exchange) {
        while !input.isEmpty, !exchange.bodyDone, !exchange.body.isPaused {
            guard case .busy(let current) = state, current === exchange else { return }
            let result = input.withUnsafeBytes { frame(exchange, $0) }
            if case .consumed(let n) = result { input.consume(n) }
            framed(exchange, result)
            if case .consumed(0) = result { break }
        }
        if exchange.bodyDone {
            limitPipelinedInput()
        } else if peerFinished && input.isEmpty, case .busy(let current) = state, current === exchange {
            abandon(exchange)  // the client finished sending before its body did
        }
    }

    /// What framing one slice of body bytes gave.
    private enum FrameResult {
        case consumed(Int)
        case failed(HTTP1ParseError)
    }

    /// Frames one slice of body bytes into the sink. Touches nothing but the exchange, so it
    /// may run on bytes borrowed from `input`; `framed` then acts on the result.
    private func frame(_ exchange: Exchange, _ buf: UnsafeRawBufferPointer) -> FrameResult {
        guard !exchange.body.isPaused else { return .consumed(0) }
        do {
            switch exchange.framing {
            case .done:
                return .consumed(0)
            case .length(let remaining):
                let take = Int(min(UInt64(buf.count), remaining))
                try deliver(UnsafeRawBufferPointer(rebasing: buf[0..<take]), to: exchange)
                exchange.framing = remaining == UInt64(take) ? .done : .length(remaining: remaining - UInt64(take))
                return .consumed(take)
            case .chunked(var decoder):
                let progress = try decoder.decode(buf) { data throws(HTTP1ParseError) in try deliver(data, to: exchange) }
                exchange.framing = progress.finished ? .done : .chunked(decoder)
                return .consumed(progress.consumed)
            }
        } catch {
            return .failed(error)
        }
    }

    /// Acts on a framing result: an error answers (or closes), the end of the body finishes it,
    /// progress re-arms the body timer.
    private func framed(_ exchange: Exchange, _ result: FrameResult) {
        guard case .busy(let current) = state, current === exchange else { return }
        switch result {
        case .failed(let error):
            exchange.keepAlive = false
            exchange.body.failStream()
            exchange.framing = .done
            input.removeAll()
            if exchange.responseQueued {
                close()
            } else if let refusal = exchange.body.refusal {
                fail(refusal)
            } else {
                fail(HTTPError.from(error))
            }
        case .consumed(let n):
            exchange.body.arrived(n, now: now)
            if exchange.bodyDone {
                bodyFinished(exchange)
            } else if !exchange.body.isPaused {
                armBodyTimer(exchange)
            }
            // While reading is paused for the handler, the body timer armed at the last read
            // still runs: a handler that takes nothing for `bodyTimeout` does not pin the connection.
        }
    }

    /// Body bytes to the exchange's body; a refusal stops the framing (`framed` answers it), a
    /// full sink pauses reading for the handler's sake.
    private func deliver(_ data: UnsafeRawBufferPointer, to exchange: Exchange) throws(HTTP1ParseError) {
        guard !data.isEmpty else { return }
        let refusal = exchange.body.deliver(data, now: now, budget: &budget)
        if exchange.body.isPaused { perform(.pauseReading) }
        if let refusal { throw .badRequest(refusal.detail) }
    }

    private func bodyFinished(_ exchange: Exchange) {
        switch exchange.body.finish(budget: &budget) {
        case .waiting:
            return  // inflating paused for the handler: the body ends once what it holds is delivered
        case .refused(let refusal):
            fail(refusal)
            return
        case .buffered(let bytes):
            exchange.request.body = .buffered(bytes)
            finishTimers(exchange)
            run(exchange)
        case .streamEnded, .discarded:
            finishTimers(exchange)
        }
        completeIfDone(exchange)
    }

    /// The body is in: the write-stall timer if an answer is on its way, else none.
    private func finishTimers(_ exchange: Exchange) {
        if exchange.responseQueued && !exchange.responseWritten {
            armWriteStallTimer(exchange)
        } else {
            clearTimer()
        }
    }

    private func resumeBodyReading(_ exchange: Exchange) {
        guard exchange.body.isPaused else { return }
        let inflating = exchange.body.inflater?.isPaused == true && !exchange.body.isDiscarding
        if exchange.body.resume(now: now, budget: &budget) != nil {
            framed(exchange, .failed(.badRequest(exchange.body.refusal?.detail ?? "malformed request body")))
            return
        }
        if inflating {
            guard !exchange.body.isPaused else { return }  // full again: the stream calls back
            if exchange.bodyDone {
                bodyFinished(exchange)
                return
            }
        }
        perform(.resumeReading)
        armBodyTimer(exchange)
        feedBody(exchange)
    }

    /// Arms the body timer: due at `bodyTimeout` after the last read, or sooner, every second,
    /// to check the minimum data rate.
    private func armBodyTimer(_ exchange: Exchange) {
        setTimer(at: exchange.body.deadline(now: now), .body(exchange.id))
    }

    private func bodyTimerFired(_ id: UInt64) {
        guard case .busy(let exchange) = state, exchange.id == id, !exchange.bodyDone else { return }
        if let refusal = exchange.body.timerFired(now: now) {
            exchange.body.failStream()
            perform(.cancelHandler(exchange.id))
            if exchange.responseQueued { close() } else { fail(refusal) }
        } else {
            armBodyTimer(exchange)
        }
    }

    /// While a request is served, bytes of later requests wait; past a bound, stop reading.
    private func limitPipelinedInput() {
        if input.count > configuration.maxPipelinedBytes + configuration.parserLimits.maxHeadBytes {
            perform(.pauseReading)
        }
    }

    // MARK: - Handlers and responses

    private func run(_ exchange: Exchange) {
        guard let route = exchange.route else { return }
        perform(.invoke(exchange, route))
        if draining && route.interruptibleOnDrain { perform(.cancelHandler(exchange.id)) }
    }

    private func respond(_ response: Response, to exchange: Exchange) {
        guard case .busy(let current) = state, current === exchange, !exchange.responseQueued else {
            perform(.undelivered(response))
            return
        }
        var response = response
        runner.willRespond(&response, to: exchange.request)
        exchange.responseQueued = true
        if draining || response.closeConnection { exchange.keepAlive = false }
        if response.status >= 400 && !exchange.bodyDone && exchange.route?.bodyMode == .streamed {
            // The handler refused a streamed body it did not read: skip it only if it is small.
            exchange.body.skipRest(allowance: configuration.maxDrainBytes, budget: &budget)
        }
        if !exchange.bodyDone, exchange.head.expectsContinue, !exchange.continueSent {
            // Answered before asking for the body: the client may never send it, so the
            // connection cannot be reused (RFC 9110 §10.1.1).
            exchange.keepAlive = false
        }
        let framing = ResponseFraming(response, method: exchange.request.method)
        var head: [UInt8] = []
        head.reserveCapacity(160 + response.body.count)
        ResponseHeadSerializer.write(
            status: framing.status, fields: framing.fields, contentLength: framing.contentLength,
            keepAlive: exchange.keepAlive, announceKeepAlive: exchange.head.version == .http1_0,
            date: date(), into: &head
        )
        if framing.sendsBody { head.append(contentsOf: response.body) }
        perform(.write(head, HTTP1WriteCompletion(exchange: exchange.id, onWritten: framing.commit)))
        if !exchange.responseWritten && isOpen {
            armWriteStallTimer(exchange)
        }
        if !exchange.keepAlive { closeAfterFlush() }
        perform(.responded(exchange, status: framing.status, bodyBytes: framing.sentBodyBytes))
    }

    /// Drops a connection whose client has taken no byte of the response for `writeTimeout`;
    /// any progress re-arms it.
    private func armWriteStallTimer(_ exchange: Exchange) {
        setTimer(at: now + configuration.writeTimeout, .writeStall(exchange.id))
    }

    private func writeStallTimerFired(_ id: UInt64, wroteSinceArmed: Bool) {
        guard case .busy(let exchange) = state, exchange.id == id, !exchange.responseWritten else { return }
        if wroteSinceArmed {
            armWriteStallTimer(exchange)
        } else {
            perform(.writeStalled)
            close()
        }
    }

    /// The exchange ends when the response is out and the body fully read.
    private func completeIfDone(_ exchange: Exchange) {
        guard case .busy(let current) = state, current === exchange, exchange.responseWritten else { return }
        guard exchange.bodyDone else {
            // Draining: nothing more will be read on this connection (`drain` closes one whose
            // answer was already written; this is one whose write finished after it).
            if draining {
                exchange.body.failStream()
                close()
                return
            }
            // Answered early: skip the rest of the body if small enough, else close.
            let paused = exchange.body.isPaused
            exchange.body.drop(allowance: configuration.maxDrainBytes, budget: &budget, now: now)
            if paused { perform(.resumeReading) }
            armBodyTimer(exchange)
            feedBody(exchange)
            return
        }
        guard exchange.keepAlive, isOpen else {
            closeAfterFlush()
            return
        }
        parser.reset()
        state = .idle(headStarted: false)
        setTimer(at: now + configuration.idleTimeout, .idle)
        perform(.resumeReading)
        processInput()
    }

    /// Answers with an error and closes after it.
    private func fail(_ error: HTTPError) {
        var error = error
        error.closeConnection = true
        switch state {
        case .closed:
            return
        case .idle:
            // A HEAD request refused before its head was parsed still gets no body.
            let isHead = input.withUnsafeBytes { $0.starts(with: "HEAD ".utf8) }
            let request = runner.unparsedRequest(method: isHead ? .head : .get, connectionID: connectionID)
            let exchange = Exchange(id: nextExchangeID(), request: request,
                                    head: RequestHead(method: request.method, target: request.target),
                                    keepAlive: false, framing: .done, body: ExchangeBody(policy: bodies, now: now, discardAllowance: 0))
            state = .busy(exchange)
            respond(ProblemResponse.make(error), to: exchange)
        case .busy(let exchange):
            exchange.keepAlive = false
            exchange.framing = .done
            if exchange.responseQueued {
                close()
            } else {
                perform(.cancelHandler(exchange.id))
                respond(ProblemResponse.make(error), to: exchange)
            }
        }
        input.removeAll()
    }
}
