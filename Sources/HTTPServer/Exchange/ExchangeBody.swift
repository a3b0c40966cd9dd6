import HTTPWire

/// Request-body bytes one connection holds for its handlers (buffered bodies not yet handed
/// over, streamed bytes the handler has not read yet), against a cap. HTTP/2 stops giving
/// flow-control credit back once `held` passes `creditLimit`; since a peer can send at most
/// `window` bytes without credit, what a connection holds stays within `max(cap, window)`.
/// (HTTP/1.1 holds one body at a time, bounded by the body's own limits, and passes no cap.)
struct BodyBudget {
    /// The cap (`maxBufferedBodyPerConnection`).
    let cap: Int
    /// Held bytes past which credit is held back: the cap less what the peer may send uncredited.
    let creditLimit: Int
    /// Bytes held now, over all the connection's bodies.
    fileprivate(set) var held = 0

    /// A budget of `cap` bytes for a peer allowed `window` bytes without credit.
    init(cap: Int, window: Int = 0) {
        self.cap = cap
        creditLimit = max(0, cap - max(0, window))
    }

    /// No cap (HTTP/1.1).
    static var unbounded: BodyBudget { BodyBudget(cap: .max) }

    /// Whether credit may be given back for held bytes.
    var allowsCredit: Bool { held <= creditLimit }
}

/// One request body, sans I/O, the same under HTTP/1.1 and HTTP/2: where its bytes go (a buffer
/// for the handler, a stream the handler reads, or nowhere), the gzip inflater, the size and
/// ratio limits, the body timeout and minimum data rate, the flow-control credit it holds back,
/// and the refusal when a limit is passed. The protocol feeds it bytes and events with the time
/// they came, and acts on what it returns (pause reading or hold credit, answer the refusal,
/// arm the timer at `deadline`). It reads no clock and performs no I/O.
struct ExchangeBody {
    /// Where the bytes go.
    enum Sink {
        case buffer([UInt8])
        case stream(BodyStream)
        /// Dropped: up to `allowance` more bytes are skipped, past it the body is refused.
        case discard(allowance: Int)
    }

    /// How a route's body is to be taken.
    enum Opening {
        /// Buffered for the handler, which runs once the body is complete.
        case buffer
        /// Streamed to the handler, which may run now.
        case stream(BodyStream)
        /// Refused from the head: answer this.
        case refused(Response)
    }

    /// What the end of the body gave.
    enum Ending {
        /// The whole buffered body: the handler runs with it.
        case buffered([UInt8])
        /// The stream was told its end.
        case streamEnded
        /// The inflater still holds output for a full stream: the body ends after `resume`.
        case waiting
        /// The body is refused (truncated gzip): answer this.
        case refused(HTTPError)
        /// Nothing to hand over (the body was being dropped).
        case discarded
    }

    let policy: RequestBodyPolicy
    private(set) var sink: Sink
    private(set) var inflater: GzipDecoder?
    /// Set once a limit was passed: the answer to send.
    private(set) var refusal: HTTPError?
    /// The sink is full (a streamed handler's buffer): read no more, or hold credit, until `resume`.
    private(set) var isPaused = false
    /// Credit is held because the connection's budget is spent, until `retryCredit`.
    private(set) var isWaitingForBudget = false
    /// Wire bytes received whose flow-control credit was not given back (HTTP/2).
    private(set) var heldCredit = 0
    /// Bytes this body has charged to the connection's budget.
    private(set) var charged = 0
    /// Wire bytes received, when the first came and the last did, and how long this body was
    /// held back for the server's sake (not the client's fault): for the minimum data rate.
    private(set) var bytesRead: UInt64 = 0
    private var firstByteAt: ContinuousClock.Instant?
    private(set) var lastReadAt: ContinuousClock.Instant
    private var pausedSince: ContinuousClock.Instant?
    private var pausedTotal: Duration = .zero
    /// When the minimum data rate is next checked (a fixed cadence: reads do not push it back).
    private var nextRateCheck: ContinuousClock.Instant?

    /// A body with nowhere to go yet: up to `discardAllowance` bytes are skipped.
    init(policy: RequestBodyPolicy, now: ContinuousClock.Instant, discardAllowance: Int) {
        self.policy = policy
        self.sink = .discard(allowance: discardAllowance)
        self.lastReadAt = now
    }

    var isDiscarding: Bool { if case .discard = sink { true } else { false } }

    /// The stream a streamed body feeds, if any.
    var stream: BodyStream? { if case .stream(let stream) = sink { stream } else { nil } }

    // MARK: - Opening

    /// Chooses where a route's body goes: its decoding (415 for a coding not taken), the declared
    /// length against the buffered limit (413), a buffer or a stream (made by `makeStream` with
    /// the length the handler may trust: none once inflated).
    mutating func open(for request: Request, bodyMode: Route.BodyMode, declaredLength: UInt64?, ended: Bool,
                       makeStream: (_ declaredLength: UInt64?) -> BodyStream) -> Opening {
        if !ended {
            switch policy.decoding(for: request, bodyMode: bodyMode) {
            case .identity: break
            case .inflate(let decoder): inflater = decoder
            case .refused(let answer): return .refused(answer)
            }
        }
        switch bodyMode {
        case .buffered:
            if let declaredLength, declaredLength > UInt64(policy.maxBodySize) {
                var refusal = policy.tooLarge
                refusal.closeConnection = true
                return .refused(ProblemResponse.make(refusal))
            }
            sink = .buffer([])
            return .buffer
        case .streamed:
            let stream = makeStream(inflater == nil ? declaredLength : nil)
            sink = .stream(stream)
            if ended { stream.finish() }
            return .stream(stream)
        }
    }

    // MARK: - Bytes

    /// Wire bytes of the body arrived (framing included): the timeout and the rate count them.
    mutating func arrived(_ count: Int, now: ContinuousClock.Instant) {
        guard count > 0 else { return }
        if firstByteAt == nil { firstByteAt = now }
        lastReadAt = now
        bytesRead &+= UInt64(count)
    }

    /// Content bytes for the sink, inflated first when the body is gzip. Returns the refusal when
    /// a limit is passed now (the body is then dropped).
    mutating func deliver(_ data: UnsafeRawBufferPointer, now: ContinuousClock.Instant, budget: inout BodyBudget) -> HTTPError? {
        guard !data.isEmpty, refusal == nil else { return nil }
        if let inflater, !isDiscarding {
            return inflate(inflater, now: now, budget: &budget) { inflater.decode(data, emit: $0) }
        }
        return deliverDecoded(data, now: now, budget: &budget)
    }

    /// One step of the inflater (a decode or a resume), its output delivered to the sink; it
    /// stops when the sink pauses, and goes on from `resume`.
    private mutating func inflate(
        _ inflater: GzipDecoder, now: ContinuousClock.Instant, budget: inout BodyBudget,
        _ step: ((UnsafeRawBufferPointer) -> Bool) -> GzipDecoder.Failure?
    ) -> HTTPError? {
        var failure: HTTPError?
        let outcome = step { plain in
            failure = deliverDecoded(plain, now: now, budget: &budget)
            return failure == nil && !isPaused
        }
        if let failure { return failure }
        switch outcome {
        case nil: return nil
        case .tooLarge?: return refuse(policy.inflatesTooFar, budget: &budget)
        case .malformed?: return refuse(.http(400, "malformed gzip request body"), budget: &budget)
        }
    }

    private mutating func deliverDecoded(_ data: UnsafeRawBufferPointer, now: ContinuousClock.Instant, budget: inout BodyBudget) -> HTTPError? {
        switch sink {
        case .buffer(var bytes):
            guard bytes.count + data.count <= policy.maxBodySize else { return refuse(policy.tooLarge, budget: &budget) }
            sink = .discard(allowance: 0)  // keep the array uniquely referenced while appending
            bytes.append(contentsOf: data)
            sink = .buffer(bytes)
            charge(data.count, budget: &budget)
        case .stream(let stream):
            if !stream.push(Array(data)) {
                // Paused for the handler's sake: the client is not stalling, so the time paused
                // does not count against its minimum data rate.
                isPaused = true
                if pausedSince == nil { pausedSince = now }
            }
            charge(stream.bufferedBytes - charged, budget: &budget)
        case .discard(let allowance):
            guard data.count <= allowance else { return refuse(.http(400, "unread request body too large to skip"), budget: &budget) }
            sink = .discard(allowance: allowance - data.count)
        }
        return nil
    }

    private mutating func charge(_ delta: Int, budget: inout BodyBudget) {
        charged += delta
        budget.held += delta
    }

    /// A limit was passed: the body is dropped and the refusal kept.
    private mutating func refuse(_ error: HTTPError, budget: inout BodyBudget) -> HTTPError {
        refusal = error
        _ = drop(allowance: 0, budget: &budget, now: lastReadAt)
        return error
    }

    /// The flow-control credit to give back now for `count` wire bytes just delivered: all of it
    /// for a dropped body; none while the handler's buffer is full or the connection's budget is
    /// spent (held until `resume` or `retryCredit`); else all of it.
    mutating func credit(_ count: Int, now: ContinuousClock.Instant, budget: BodyBudget) -> Int {
        if isDiscarding {
            defer { heldCredit = 0 }
            return heldCredit + count
        }
        heldCredit += count
        return takeCredit(now: now, budget: budget)
    }

    private mutating func takeCredit(now: ContinuousClock.Instant, budget: BodyBudget) -> Int {
        if isDiscarding || (!isPaused && budget.allowsCredit) {
            if isWaitingForBudget {
                isWaitingForBudget = false
                endPause(now: now)
            }
            defer { heldCredit = 0 }
            return heldCredit
        }
        if !isPaused && !isWaitingForBudget && heldCredit > 0 {
            isWaitingForBudget = true
            if pausedSince == nil { pausedSince = now }
        }
        return 0
    }

    /// The budget may have room again: the credit held for it, if it can go back now.
    mutating func retryCredit(now: ContinuousClock.Instant, budget: inout BodyBudget) -> Int {
        refreshCharge(budget: &budget)
        return takeCredit(now: now, budget: budget)
    }

    /// Brings a streamed body's charge to what its handler has not read yet.
    mutating func refreshCharge(budget: inout BodyBudget) {
        if case .stream(let stream) = sink { charge(stream.bufferedBytes - charged, budget: &budget) }
    }

    private mutating func endPause(now: ContinuousClock.Instant) {
        if let since = pausedSince {
            pausedTotal += now - since
            pausedSince = nil
        }
        lastReadAt = now
    }

    /// The handler drained its buffer: the inflater goes on with what it holds (which may fill
    /// the buffer again: `isPaused`). Returns the refusal if inflating fails.
    mutating func resume(now: ContinuousClock.Instant, budget: inout BodyBudget) -> HTTPError? {
        guard isPaused else { return nil }
        isPaused = false
        if !isWaitingForBudget { endPause(now: now) }
        refreshCharge(budget: &budget)
        if let inflater, inflater.isPaused, !isDiscarding {
            return inflate(inflater, now: now, budget: &budget) { inflater.resume(emit: $0) }
        }
        return nil
    }

    /// After `resume`, the credit that may go back now.
    mutating func resumedCredit(now: ContinuousClock.Instant, budget: BodyBudget) -> Int {
        takeCredit(now: now, budget: budget)
    }

    /// The body ended (its last byte framed, or END_STREAM).
    mutating func finish(budget: inout BodyBudget) -> Ending {
        if let inflater, !isDiscarding {
            if inflater.isPaused { return .waiting }
            if !inflater.finished {
                let error = refuse(.http(400, "the gzip request body ends before its gzip member does"), budget: &budget)
                return .refused(error)
            }
        }
        switch sink {
        case .buffer(let bytes):
            charge(-charged, budget: &budget)
            sink = .discard(allowance: 0)
            return .buffered(bytes)
        case .stream(let stream):
            stream.finish()
            return .streamEnded
        case .discard:
            return .discarded
        }
    }

    /// The rest of the body is not wanted (an early answer, a refusal, the client gone): a
    /// streamed body fails, the bytes held leave the budget, reading goes on, and up to
    /// `allowance` more bytes are skipped. Returns the credit held, to give back.
    @discardableResult
    mutating func drop(allowance: Int, budget: inout BodyBudget, now: ContinuousClock.Instant) -> Int {
        failStream()
        skipRest(allowance: allowance, budget: &budget)
        unpause(now: now)
        isWaitingForBudget = false
        defer { heldCredit = 0 }
        return heldCredit
    }

    /// The handler answered without taking the rest: it is skipped, up to `allowance` bytes
    /// (unless already dropped), and leaves the budget. The stream is left to its handler.
    mutating func skipRest(allowance: Int, budget: inout BodyBudget) {
        if !isDiscarding { sink = .discard(allowance: allowance) }
        charge(-charged, budget: &budget)
    }

    /// Reading goes on although nobody drained the sink (its bytes are being dropped): the body
    /// timer runs from now.
    mutating func unpause(now: ContinuousClock.Instant) {
        guard isPaused else { return }
        isPaused = false
        endPause(now: now)
    }

    /// Fails a streamed body's stream (the body will not complete), leaving the rest as it is.
    func failStream() {
        if case .stream(let stream) = sink { stream.fail() }
    }

    // MARK: - Time

    /// When the body's timer is due: `bodyTimeout` after the last read (it runs also while held
    /// back for the handler, so a handler that takes nothing does not pin the body), or sooner,
    /// every second, to check the minimum data rate.
    mutating func deadline(now: ContinuousClock.Instant) -> ContinuousClock.Instant {
        var due = lastReadAt + policy.bodyTimeout
        if policy.minDataRate > 0 {
            let check = nextRateCheck ?? now + .seconds(1)
            nextRateCheck = check
            due = min(due, check)
        }
        return due
    }

    /// The timer fired: the refusal (408) when the body is cut, else nil (arm `deadline` again).
    mutating func timerFired(now: ContinuousClock.Instant) -> HTTPError? {
        if let check = nextRateCheck, check <= now { nextRateCheck = now + .seconds(1) }
        if now - lastReadAt >= policy.bodyTimeout { return policy.timedOut }
        if !isPaused && !isWaitingForBudget && isBelowMinimumRate(now: now) { return policy.tooSlow }
        return nil
    }

    /// Kestrel's MinRequestBodyDataRate: after a grace period from the first body byte, the
    /// average rate over the time the client was being read (time held back excluded) must
    /// reach the minimum.
    private func isBelowMinimumRate(now: ContinuousClock.Instant) -> Bool {
        guard policy.minDataRate > 0, let first = firstByteAt else { return false }
        let active = now - first - pausedTotal
        guard active > policy.minDataRateGrace else { return false }
        let seconds = Double(active.components.seconds) + Double(active.components.attoseconds) / 1e18
        return Double(bytesRead) < Double(policy.minDataRate) * seconds
    }
}
