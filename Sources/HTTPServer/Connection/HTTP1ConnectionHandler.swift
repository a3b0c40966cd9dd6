import HTTP2Wire
import HTTPWire
import Transport

/// The HTTP/1.1 protocol state machine of one connection (RFC 9112): parses heads, frames and
/// delivers bodies, runs one request at a time (pipelined requests wait in the input buffer and
/// are answered in order), writes responses and enforces the timeouts. Confined to the
/// connection's worker queue.
final class HTTP1ConnectionHandler: ConnectionDelegate, ConnectionHandler, @unchecked Sendable {
    // Safety: every property is touched only on `connection.queue`, except from the tasks that
    // run async handlers, which hop back to that queue before touching anything.

    let connection: any ConnectionIO
    private let core: ServerCore
    private var configuration: ServerConfiguration { core.configuration }
    private var parser: RequestHeadParser
    /// Bytes received and not yet consumed (a partial head, or pipelined requests).
    private var input = InputBuffer()
    private var state = State.idle(headStarted: false)
    private var draining = false
    /// The peer finished sending (EOF) while body bytes it sent still wait in `input`.
    private var peerFinished = false
    /// What the server's registry was last told: waiting for a request, no byte of it received.
    private var registeredIdle = false
    /// Whether a request has begun on this connection (HTTP/2 is taken only before the first).
    private var begunAny = false

    private enum State {
        /// Waiting for (the rest of) a request head.
        case idle(headStarted: Bool)
        /// A request is being served.
        case busy(Exchange)
        /// The connection is closing or closed.
        case closed
    }

    /// Where the bytes of a request body go.
    private enum BodySink {
        case buffer([UInt8])
        case stream(BodyStream)
        case discard(allowance: Int)
    }

    /// Remaining framing of a request body.
    private enum BodyFramingState {
        case done
        case length(remaining: UInt64)
        case chunked(ChunkedDecoder)
    }

    /// One request/response exchange.
    private final class Exchange: @unchecked Sendable {
        // Safety: confined to the connection's queue like its handler; tasks only carry it back there.
        var request: Request
        /// The HTTP/1.1 head: framing, persistence, `Expect`.
        let head: RequestHead
        var route: Route?
        var keepAlive: Bool
        var framing: BodyFramingState
        var sink: BodySink
        var responseQueued = false
        var responseWritten = false
        var task: RunningHandler?
        var readPausedByBody = false
        /// Set when a body grew past a limit (the 413 to answer).
        var bodyTooLarge: HTTPError?
        /// Inflates a `Content-Encoding: gzip` body before it reaches its sink.
        var inflater: GzipDecoder?
        /// Whether `100 Continue` was sent.
        var continueSent = false
        /// Body bytes received, when the first arrived, when the last did, and how long reading
        /// was paused for the handler's sake (not the client's fault): for the minimum data rate.
        var bodyBytesRead: UInt64 = 0
        var firstBodyByteAt: ContinuousClock.Instant?
        var lastBodyReadAt: ContinuousClock.Instant = .now
        var pausedSince: ContinuousClock.Instant?
        var pausedTotal: Duration = .zero
        /// When the minimum data rate is next checked.
        var nextRateCheck: ContinuousClock.Instant?

        init(request: Request, head: RequestHead, keepAlive: Bool, framing: BodyFramingState, sink: BodySink) {
            self.request = request
            self.head = head
            self.keepAlive = keepAlive
            self.framing = framing
            self.sink = sink
        }

        var bodyDone: Bool { if case .done = framing { true } else { false } }
        var isDiscarding: Bool { if case .discard = sink { true } else { false } }
    }

    init(connection: any ConnectionIO, core: ServerCore) {
        self.connection = connection
        self.core = core
        self.parser = RequestHeadParser(limits: core.configuration.parserLimits)
    }

    /// Starts serving. The head timeout runs from accept: a connection that sends nothing is
    /// closed after `headerTimeout`, not held for the idle timeout.
    func start() {
        connection.start(delegate: self)
        state = .idle(headStarted: true)
        setIdle(true)
        connection.setTimer(after: configuration.headerTimeout) { [weak self] in self?.headTimedOut() }
    }

    /// Gives the connection to an HTTP/2 handler, with the bytes not yet consumed; this handler
    /// then does nothing more.
    private func handOver(to session: HTTP2ServerSession, _ start: (HTTP2ConnectionHandler, [UInt8]) -> Void) {
        let handler = HTTP2ConnectionHandler(connection: connection, core: core, session: session)
        let received = input.withUnsafeBytes { Array($0) }
        input.removeAll()
        setIdle(false)
        state = .closed
        connection.clearTimer()
        core.connection(handedOverTo: handler)
        start(handler, received)
    }

    /// Whether a request is being served (its answer or its body still pending).
    var isServing: Bool {
        if case .busy = state { return true }
        return false
    }

    /// Closed by the server at its connection cap to make room (it was idle when chosen, and
    /// `setIdle(false)` keeps it from serving anything since).
    func evict() {
        close()
    }

    /// Tells the registry; false when the connection was chosen for eviction (it must close).
    @discardableResult
    private func setIdle(_ idle: Bool) -> Bool {
        guard idle != registeredIdle else { return true }
        registeredIdle = idle
        return core.connection(self, isIdle: idle)
    }

    private func headTimedOut() {
        guard case .idle = state else { return }
        if input.isEmpty {
            close()  // nothing was sent: nothing to answer
        } else {
            fail(.http(408, "request head not received in time", closeConnection: true))
        }
    }

    // MARK: - ConnectionDelegate

    func connection(_ connection: any ConnectionIO, didRead bytes: UnsafeRawBufferPointer) {
        switch state {
        case .closed:
            return
        case .idle:
            guard setIdle(false) else {
                close()  // evicted at the cap: what arrived is not served
                return
            }
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

    func connectionDidReachEOF(_ connection: any ConnectionIO) {
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
            if case .stream(let stream) = exchange.sink { stream.fail() }
            exchange.task?.cancel()
            close()
            return
        }
        if exchange.route?.interruptibleOnDrain == true { exchange.task?.cancel() }
        if exchange.responseQueued { connection.closeAfterFlush() }
    }

    func connection(_ connection: any ConnectionIO, writabilityChanged writable: Bool) {}

    func connectionDidClose(_ connection: any ConnectionIO) {
        if case .busy(let exchange) = state {
            exchange.task?.cancel()
            if case .stream(let stream) = exchange.sink { stream.fail() }
        }
        state = .closed
        input.removeAll()
        core.connectionClosed(self)
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
                handOver(to: session) { $0.start(received: $1) }
                return
            case nil:
                if case .idle(headStarted: false) = state {
                    state = .idle(headStarted: true)
                    connection.setTimer(after: configuration.headerTimeout) { [weak self] in self?.headTimedOut() }
                }
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
            if case .idle(headStarted: false) = state {
                state = .idle(headStarted: true)
                connection.setTimer(after: configuration.headerTimeout) { [weak self] in self?.headTimedOut() }
            }
        case .complete(let head, let consumed):
            input.consume(consumed)
            begin(head)
        }
    }

    private func begin(_ head: RequestHead) {
        connection.clearTimer()
        if !begunAny, case .none = head.framing, let settings = HTTP2Upgrade.settingsPayload(from: head.fields),
           let session = HTTP2ServerSession(upgradeWithSettings: settings, headRequest: head.method == .head, limits: configuration.http2Limits) {
            // Upgrade: h2c (RFC 7540 §3.2): 101, then HTTP/2 with this request as stream 1.
            handOver(to: session) { $0.startUpgraded(request: head, received: $1) }
            return
        }
        begunAny = true
        var request = Request(head: head, connectionID: connection.id)
        let keepAlive = head.keepAlive && !draining
        var framing: BodyFramingState
        switch head.framing {
        case .none, .length(0): framing = .done
        case .length(let n): framing = .length(remaining: n)
        case .chunked: framing = .chunked(ChunkedDecoder(maxTrailerBytes: configuration.parserLimits.maxTrailerBytes))
        }
        let exchange = Exchange(request: request, head: head, keepAlive: keepAlive, framing: framing, sink: .discard(allowance: configuration.maxDrainBytes))
        state = .busy(exchange)
        let routing = core.runner.route(&request)
        exchange.request = request
        switch routing {
        case .answer(let response):
            respond(response, to: exchange)
        case .route(let route):
            exchange.route = route
            prepareBody(exchange, route: route)
        }
        if case .busy(let current) = state, current === exchange, !exchange.bodyDone {
            feedBody(exchange)
        } else {
            limitPipelinedInput()
        }
    }

    /// Chooses where the body goes and starts the handler when it can start.
    private func prepareBody(_ exchange: Exchange, route: Route) {
        let head = exchange.head
        if !exchange.bodyDone {
            switch core.bodies.decoding(for: exchange.request, bodyMode: route.bodyMode) {
            case .identity:
                break
            case .inflate(let decoder):
                exchange.inflater = decoder
            case .refused(let answer):
                respond(answer, to: exchange)
                return
            }
        }
        switch route.bodyMode {
        case .buffered:
            if case .length(let n) = head.framing, n > UInt64(configuration.maxBodySize) {
                var refusal = core.bodies.tooLarge
                refusal.closeConnection = true
                respond(ProblemResponse.make(refusal), to: exchange)
                return
            }
            if exchange.bodyDone {
                exchange.request.body = .empty
                run(exchange)
                return
            }
            sendContinueIfExpected(exchange)
            exchange.sink = .buffer([])
            armBodyTimer(exchange)
        case .streamed:
            if case .none = head.framing {
                respond(ProblemResponse.make(.http(411, "a Content-Length or chunked body is required")), to: exchange)
                return
            }
            var declared: UInt64?
            if case .length(let n) = head.framing, exchange.inflater == nil { declared = n }
            // The stream holds its callbacks and the exchange holds the stream: the callbacks
            // hold the exchange weakly, or every streamed exchange would outlive its connection.
            let queue = connection.queue
            let stream = BodyStream(
                declaredLength: declared, capacity: configuration.streamingBodyBuffer,
                onFirstRead: { [weak self, weak exchange] in
                    // `100 Continue` only once the handler asks for the body: a request refused
                    // from its head gets none (RFC 9110 §10.1.1).
                    guard let self, let exchange else { return }
                    queue.async { self.handlerWantsBody(exchange) }
                },
                resumeProducer: { [weak self, weak exchange] in
                    guard let self, let exchange else { return }
                    queue.async { self.resumeBodyReading(exchange) }
                }
            )
            exchange.sink = .stream(stream)
            exchange.request.body = .stream(stream)
            if exchange.bodyDone {
                stream.finish()
            } else {
                armBodyTimer(exchange)
            }
            run(exchange)
        }
    }

    private func handlerWantsBody(_ exchange: Exchange) {
        guard case .busy(let current) = state, current === exchange, !exchange.responseQueued, !exchange.bodyDone else { return }
        sendContinueIfExpected(exchange)
    }

    private func sendContinueIfExpected(_ exchange: Exchange) {
        guard exchange.head.expectsContinue, !exchange.continueSent else { return }
        exchange.continueSent = true
        connection.write([Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)])
    }

    // MARK: - Bodies

    /// Moves body bytes from `input` into the exchange's sink.
    private func feedBody(_ exchange: Exchange) {
        while !input.isEmpty, !exchange.bodyDone, !exchange.readPausedByBody {
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
        guard !exchange.readPausedByBody else { return .consumed(0) }
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
            if case .stream(let stream) = exchange.sink { stream.fail() }
            exchange.framing = .done
            input.removeAll()
            if exchange.responseQueued {
                close()
            } else if let refusal = exchange.bodyTooLarge {
                fail(refusal)
            } else {
                fail(HTTPError.from(error))
            }
        case .consumed(let n):
            if n > 0 {
                let now = ContinuousClock.now
                if exchange.firstBodyByteAt == nil { exchange.firstBodyByteAt = now }
                exchange.lastBodyReadAt = now
                exchange.bodyBytesRead &+= UInt64(n)
            }
            if exchange.bodyDone {
                bodyFinished(exchange)
            } else if !exchange.readPausedByBody {
                armBodyTimer(exchange)
            }
            // While reading is paused for the handler, the body timer armed at the last read
            // still runs: a handler that takes nothing for `bodyTimeout` does not pin the connection.
        }
    }

    private func deliver(_ data: UnsafeRawBufferPointer, to exchange: Exchange) throws(HTTP1ParseError) {
        guard !data.isEmpty else { return }
        if let inflater = exchange.inflater, !exchange.isDiscarding {
            try inflate(exchange, inflater) { inflater.decode(data, emit: $0) }
            return
        }
        try deliverDecoded(data, to: exchange)
    }

    /// One step of the body's inflater (a decode or a resume), its output delivered to the sink;
    /// it stops when the sink pauses reading, and goes on from `resumeBodyReading`.
    private func inflate(
        _ exchange: Exchange, _ inflater: GzipDecoder, _ step: ((UnsafeRawBufferPointer) -> Bool) -> GzipDecoder.Failure?
    ) throws(HTTP1ParseError) {
        var sinkError: HTTP1ParseError?
        let failure = step { plain in
            do throws(HTTP1ParseError) {
                try deliverDecoded(plain, to: exchange)
            } catch {
                sinkError = error
                return false
            }
            return !exchange.readPausedByBody
        }
        if let sinkError { throw sinkError }
        switch failure {
        case nil:
            return
        case .tooLarge?:
            exchange.bodyTooLarge = core.bodies.inflatesTooFar
            throw .badRequest("request body too large")
        case .malformed?:
            throw .badRequest("malformed gzip request body")
        }
    }

    private func deliverDecoded(_ data: UnsafeRawBufferPointer, to exchange: Exchange) throws(HTTP1ParseError) {
        switch exchange.sink {
        case .buffer(var bytes):
            if bytes.count + data.count > configuration.maxBodySize {
                exchange.sink = .discard(allowance: 0)
                exchange.bodyTooLarge = core.bodies.tooLarge
                throw .badRequest("request body too large")
            }
            exchange.sink = .buffer([])  // keep the array uniquely referenced while appending
            bytes.append(contentsOf: data)
            exchange.sink = .buffer(bytes)
        case .stream(let stream):
            if !stream.push(Array(data)) {
                // Reading pauses for the handler's sake: the client is not stalling, so the time
                // paused does not count against its minimum data rate.
                exchange.readPausedByBody = true
                exchange.pausedSince = .now
                connection.pauseReading()
            }
        case .discard(let allowance):
            guard data.count <= allowance else { throw .badRequest("unread request body too large to skip") }
            exchange.sink = .discard(allowance: allowance - data.count)
        }
    }

    private func bodyFinished(_ exchange: Exchange) {
        // Inflating paused for the handler: the body ends once what it holds is delivered.
        if let inflater = exchange.inflater, inflater.isPaused, !exchange.isDiscarding { return }
        if let inflater = exchange.inflater, !inflater.finished, !exchange.isDiscarding {
            if case .stream(let stream) = exchange.sink { stream.fail() }
            fail(.http(400, "the gzip request body ends before its gzip member does"))
            return
        }
        if exchange.responseQueued && !exchange.responseWritten {
            armWriteStallTimer(exchange)
        } else {
            connection.clearTimer()
        }
        switch exchange.sink {
        case .buffer(let bytes):
            exchange.request.body = .buffered(bytes)
            exchange.sink = .discard(allowance: 0)
            run(exchange)
        case .stream(let stream):
            stream.finish()
        case .discard:
            break
        }
        completeIfDone(exchange)
    }

    private func resumeBodyReading(_ exchange: Exchange) {
        guard case .busy(let current) = state, current === exchange, exchange.readPausedByBody else { return }
        exchange.readPausedByBody = false
        if let since = exchange.pausedSince {
            exchange.pausedTotal += .now - since
            exchange.pausedSince = nil
        }
        exchange.lastBodyReadAt = .now
        if let inflater = exchange.inflater, inflater.isPaused, !exchange.isDiscarding {
            do {
                try inflate(exchange, inflater) { inflater.resume(emit: $0) }
            } catch {
                framed(exchange, .failed(error))
                return
            }
            guard !exchange.readPausedByBody else { return }  // full again: the stream calls back
            if exchange.bodyDone {
                bodyFinished(exchange)
                return
            }
        }
        connection.resumeReading()
        armBodyTimer(exchange)
        feedBody(exchange)
    }

    /// Arms the body timer: due at `bodyTimeout` after the last read, or sooner, every second,
    /// to check the minimum data rate.
    private func armBodyTimer(_ exchange: Exchange) {
        let now = ContinuousClock.now
        var due = exchange.lastBodyReadAt + configuration.bodyTimeout
        if configuration.minBodyDataRate > 0 {
            // A fixed cadence: reads must not keep pushing the check back.
            let check = exchange.nextRateCheck ?? now + .seconds(1)
            exchange.nextRateCheck = check
            due = min(due, check)
        }
        connection.setTimer(after: due - now) { [weak self, weak exchange] in
            if let self, let exchange { self.bodyTimerFired(exchange) }
        }
    }

    private func bodyTimerFired(_ exchange: Exchange) {
        guard case .busy(let current) = state, current === exchange, !exchange.bodyDone else { return }
        let now = ContinuousClock.now
        if let check = exchange.nextRateCheck, check <= now { exchange.nextRateCheck = now + .seconds(1) }
        if now - exchange.lastBodyReadAt >= configuration.bodyTimeout {
            bodyTimedOut(exchange, "request body not received in time")
        } else if !exchange.readPausedByBody, isBelowMinimumRate(exchange, now: now) {
            bodyTimedOut(exchange, "request body arrives slower than \(configuration.minBodyDataRate) bytes/s")
        } else {
            armBodyTimer(exchange)
        }
    }

    /// Kestrel's MinRequestBodyDataRate: after a grace period from the first body byte, the
    /// average rate over the time the client was being read (pauses for the handler excluded)
    /// must reach the minimum.
    private func isBelowMinimumRate(_ exchange: Exchange, now: ContinuousClock.Instant) -> Bool {
        guard configuration.minBodyDataRate > 0, let first = exchange.firstBodyByteAt else { return false }
        let active = now - first - exchange.pausedTotal
        guard active > configuration.minBodyDataRateGrace else { return false }
        let seconds = Double(active.components.seconds) + Double(active.components.attoseconds) / 1e18
        return Double(exchange.bodyBytesRead) < Double(configuration.minBodyDataRate) * seconds
    }

    private func bodyTimedOut(_ exchange: Exchange, _ why: String) {
        if case .stream(let stream) = exchange.sink { stream.fail() }
        exchange.task?.cancel()
        if exchange.responseQueued { close() } else { fail(.http(408, why, closeConnection: true)) }
    }

    /// While a request is served, bytes of later requests wait; past a bound, stop reading.
    private func limitPipelinedInput() {
        if input.count > configuration.maxPipelinedBytes + configuration.parserLimits.maxHeadBytes {
            connection.pauseReading()
        }
    }

    // MARK: - Handlers and responses

    private func run(_ exchange: Exchange) {
        guard let route = exchange.route else { return }
        exchange.task = core.runner.invoke(route, exchange.request, on: connection.queue) { response in
            self.respond(response, to: exchange)
        }
        if draining && route.interruptibleOnDrain { exchange.task?.cancel() }
    }

    private func respond(_ response: Response, to exchange: Exchange) {
        guard case .busy(let current) = state, current === exchange, !exchange.responseQueued else {
            response.onWritten?(false)
            return
        }
        var response = response
        core.runner.willRespond(&response, to: exchange.request)
        exchange.responseQueued = true
        if draining || response.closeConnection { exchange.keepAlive = false }
        if response.status >= 400 && !exchange.bodyDone && exchange.route?.bodyMode == .streamed {
            // The handler refused a streamed body it did not read: skip it only if it is small.
            exchange.sink = .discard(allowance: configuration.maxDrainBytes)
        }
        if !exchange.bodyDone, exchange.head.expectsContinue, !exchange.continueSent {
            // Answered before asking for the body: the client may never send it, so the
            // connection cannot be reused (RFC 9110 §10.1.1).
            exchange.keepAlive = false
        }
        var headers = response.headers
        headers.remove("Connection")
        var head: [UInt8] = []
        head.reserveCapacity(160 + response.body.count)
        let isHead = exchange.request.method == .head
        ResponseHeadSerializer.write(
            status: response.status, fields: headers, contentLength: response.body.count,
            keepAlive: exchange.keepAlive, announceKeepAlive: exchange.head.version == .http1_0,
            date: DateCache.shared.current(), into: &head
        )
        let sendsBody = !isHead && response.status >= 200 && response.status != 204 && response.status != 304
        if sendsBody { head.append(contentsOf: response.body) }
        let onWritten = response.onWritten
        connection.write([head]) { [weak self] ok in
            // A body that was not sent (HEAD, 204, 304) was not delivered: what it carried goes back.
            onWritten?(ok && sendsBody)
            guard let self else { return }
            if ok {
                exchange.responseWritten = true
                self.completeIfDone(exchange)
            }
        }
        if !exchange.responseWritten && connection.isOpen {
            armWriteStallTimer(exchange)
        }
        if !exchange.keepAlive { connection.closeAfterFlush() }
        core.runner.didRespond(to: exchange.request, status: response.status, bodyBytes: sendsBody ? response.body.count : 0)
    }

    /// Drops a connection whose client has taken no byte of the response for `writeTimeout`;
    /// any progress re-arms it.
    private func armWriteStallTimer(_ exchange: Exchange) {
        let mark = connection.totalBytesWritten
        connection.setTimer(after: configuration.writeTimeout) { [weak self] in
            guard let self, case .busy(let current) = self.state, current === exchange, !exchange.responseWritten else { return }
            if self.connection.totalBytesWritten > mark {
                self.armWriteStallTimer(exchange)
            } else {
                self.core.logger.warning("write stalled: closing", metadata: ["conn": "\(self.connection.id)"])
                self.close()
            }
        }
    }

    /// The exchange ends when the response is out and the body fully read.
    private func completeIfDone(_ exchange: Exchange) {
        guard case .busy(let current) = state, current === exchange, exchange.responseWritten else { return }
        guard exchange.bodyDone else {
            // Draining: nothing more will be read on this connection (`drain()` closes one whose
            // answer was already written; this is one whose write finished after it).
            if draining {
                close()
                return
            }
            // Answered early: skip the rest of the body if small enough, else close.
            if case .stream(let stream) = exchange.sink { stream.fail() }
            if case .discard = exchange.sink {} else { exchange.sink = .discard(allowance: configuration.maxDrainBytes) }
            if exchange.readPausedByBody {
                exchange.readPausedByBody = false
                exchange.lastBodyReadAt = .now
                connection.resumeReading()
            }
            armBodyTimer(exchange)
            feedBody(exchange)
            return
        }
        guard exchange.keepAlive, connection.isOpen else {
            connection.closeAfterFlush()
            return
        }
        parser.reset()
        state = .idle(headStarted: false)
        armIdleTimer()
        connection.resumeReading()
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
            let request = core.runner.unparsedRequest(method: isHead ? .head : .get, connectionID: connection.id)
            let exchange = Exchange(request: request, head: RequestHead(method: request.method, target: request.target),
                                    keepAlive: false, framing: .done, sink: .discard(allowance: 0))
            state = .busy(exchange)
            respond(ProblemResponse.make(error), to: exchange)
        case .busy(let exchange):
            exchange.keepAlive = false
            exchange.framing = .done
            if exchange.responseQueued {
                close()
            } else {
                exchange.task?.cancel()
                respond(ProblemResponse.make(error), to: exchange)
            }
        }
        input.removeAll()
    }

    // MARK: - Lifecycle

    private func armIdleTimer() {
        connection.setTimer(after: configuration.idleTimeout) { [weak self] in self?.close() }
    }

    /// Graceful drain: idle connections close now, busy ones after their response; long-polls
    /// are interrupted so that they answer at once.
    func drain() {
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
                exchange.task?.cancel()
            }
        }
    }

    /// Closes now.
    func close() {
        if case .closed = state { return }
        connection.close()
    }
}
