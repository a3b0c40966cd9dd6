import Dispatch
import HTTPWire
import Synchronization

/// What every protocol shares in serving one request, knowing none of them: the filter chain,
/// routing, invoking the handler (sync, async or inline-first), rendering errors, and telling the
/// filters what was answered. A connection (HTTP/1.1) or a stream (HTTP/2) hands it requests and
/// writes what it answers, commits or requeues through `Response.onWritten`, and cancels the
/// handler's task when its client goes away.
final class ExchangeRunner: Sendable {
    let router: Router
    // The chain, in order: request ids, the target-form check, the server's own filters
    // (authentication goes here), compression, the observer. The links the runner owns are held
    // by their types and called directly; only the server's own are existentials, reached through
    // a buffer pointer (an array's subscript would copy each one, through its value witnesses).
    private let requestIDs = RequestIDFilter()
    private let targetForm = TargetFormFilter()
    private let filters: [any ExchangeFilter]
    private let compression: CompressionFilter
    private let observer: ObserverFilter?
    private let errorRenderer: @Sendable (any Error) -> Response
    /// How long a handler's 429 is held before it is delivered (`ServerConfiguration`); nil = not held.
    private let tooManyRequestsDelay: DispatchTimeInterval?
    /// Holds 401 and 403 answers to an address past its allowance as 429s are held; nil = never.
    private let refusalPacer: RefusalPacer?

    /// What routing decided.
    enum Routing {
        /// Run this route's handler (its parameters and template are set on the request).
        case route(Route)
        /// Answer this without a handler (no route, a method not allowed, a filter's refusal).
        case answer(Response)
        /// Answer this without a handler, but only once `hold` delivers it (a filter's 401 to an
        /// address past its allowance).
        case held(Response)
    }

    init(router: Router, filters: [any ExchangeFilter], compressionMinimumBytes: Int, tooManyRequestsDelay: Duration,
         refusalPacer: RefusalPacer? = nil, observer: (any RequestObserver)?, errorRenderer: @escaping @Sendable (any Error) -> Response) {
        self.router = router
        let (seconds, attoseconds) = tooManyRequestsDelay.components
        self.tooManyRequestsDelay = tooManyRequestsDelay > .zero
            ? .nanoseconds(Int(min(seconds, 3_600)) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)) : nil
        self.refusalPacer = self.tooManyRequestsDelay == nil ? nil : refusalPacer
        self.errorRenderer = errorRenderer
        self.filters = filters
        compression = CompressionFilter(minimumBytes: compressionMinimumBytes)
        self.observer = observer.map(ObserverFilter.init)
    }

    /// Passes the request through the filters and the router.
    func route(_ request: inout Request) -> Routing {
        do {
            try requestIDs.willRoute(&request)
            try targetForm.willRoute(&request)
            try filters.withUnsafeBufferPointer { own in
                for index in own.indices { try own[index].willRoute(&request) }
            }
        } catch {
            let response = render(error)
            return holds(response, to: request) ? .held(response) : .answer(response)
        }
        switch router.match(request.method, path: request.path) {
        case .notFound:
            return .answer(ProblemResponse.make(.http(404, "no route for \(request.method) \(request.path)")))
        case .methodNotAllowed(let allow):
            var headers = HTTPFields()
            headers.append(name: "Allow", value: allow.joined(separator: ", "))
            return .answer(ProblemResponse.make(.http(405, "method \(request.method) not allowed here", headers: headers)))
        case .notImplemented:
            return .answer(ProblemResponse.make(.http(501, "method \(request.method) is not implemented")))
        case .found(let route, let parameters):
            request.parameters = parameters
            request.routeTemplate = route.template
            return .route(route)
        }
    }

    /// What `invoke` did with the handler.
    enum Invocation {
        /// It answered without waiting: the caller takes the answer now, inline.
        case answered(Response)
        /// Its answer comes later, through the deliverer; the running handler, if any, is what to
        /// call off when the client goes away.
        case waiting(RunningHandler?)
    }

    /// Runs the handler. An answer given at once comes back as `.answered`; otherwise
    /// `deliverer` is asked for the function that takes the answer, exactly once, on `queue`
    /// (made only then: the common inline answer allocates no closure), and a 429 comes
    /// `tooManyRequestsDelay` later through it too.
    func invoke(_ route: Route, _ request: Request, on queue: DispatchQueue,
                deliverer: () -> @Sendable (Response) -> Void) -> Invocation {
        switch route.handler {
        case .sync(let handler):
            let response: Response
            do { response = try handler(request) } catch { response = render(error) }
            return hand(response, to: request, deliverer, on: queue)
        case .async(let handler):
            return .waiting(start(handler, request, on: queue, deliver: deliverer()))
        case .inlineFirst(let inline, let waiting):
            let immediate: Response?
            do { immediate = try inline(request) } catch { immediate = render(error) }
            if let immediate { return hand(immediate, to: request, deliverer, on: queue) }
            return .waiting(start(waiting, request, on: queue, deliver: deliverer()))
        case .parked(let handler):
            let deliver = deliverer()
            let answer = ParkedAnswer(queue: queue, deliver: { [self] in give($0, to: request, via: deliver, on: queue) }, render: render)
            var callOff: (@Sendable () -> Void)?
            do { callOff = try handler(request, Responder(answer.take)) } catch { answer.take(.failure(error)) }
            if answer.callReturned() { return .waiting(nil) }
            return .waiting(callOff.map { RunningHandler(callOff: $0) })
        }
    }

    /// Whether an answer is held `tooManyRequestsDelay` before it is delivered: a 429, or a
    /// refusal of credentials to an address past its allowance (counted here, once per answer).
    private func holds(_ response: Response, to request: Request) -> Bool {
        guard tooManyRequestsDelay != nil else { return false }
        if response.status == 429 { return true }
        return response.isAccessRefusal && refusalPacer?.record(peer: request.peerAddress) == true
    }

    /// Delivers a `.held` answer `tooManyRequestsDelay` from now, on `queue`.
    func hold(_ response: Response, on queue: DispatchQueue, deliver: @escaping @Sendable (Response) -> Void) {
        queue.asyncAfter(deadline: .now() + (tooManyRequestsDelay ?? .never)) { deliver(response) }
    }

    /// An answer given at once: handed back, or held `tooManyRequestsDelay` first (`holds`).
    private func hand(_ response: Response, to request: Request, _ deliverer: () -> @Sendable (Response) -> Void,
                      on queue: DispatchQueue) -> Invocation {
        guard holds(response, to: request) else { return .answered(response) }
        hold(response, on: queue, deliver: deliverer())
        return .waiting(nil)
    }

    /// Gives `response` to `deliver`, on `queue` (where this is called): now, or held first.
    private func give(_ response: Response, to request: Request, via deliver: @escaping @Sendable (Response) -> Void, on queue: DispatchQueue) {
        if case .answered(let now) = hand(response, to: request, { deliver }, on: queue) { deliver(now) }
    }

    private func start(_ handler: @escaping @Sendable (Request) async throws -> Response, _ request: Request,
                       on queue: DispatchQueue, deliver: @escaping @Sendable (Response) -> Void) -> RunningHandler {
        let task = Task { [self] in
            let response: Response
            do { response = try await handler(request) } catch { response = render(error) }
            queue.async { [self] in give(response, to: request, via: deliver, on: queue) }
        }
        return RunningHandler { task.cancel() }
    }

    /// The filters' last word before the answer is written.
    func willRespond(_ response: inout Response, to request: Request) {
        requestIDs.willRespond(&response, to: request)
        filters.withUnsafeBufferPointer { own in
            for index in own.indices { own[index].willRespond(&response, to: request) }
        }
        compression.willRespond(&response, to: request)
    }

    /// The answer was queued.
    func didRespond(to request: Request, status: Int, bodyBytes: Int) {
        let duration = ContinuousClock.now - request.receivedAt
        filters.withUnsafeBufferPointer { own in
            for index in own.indices { own[index].didRespond(to: request, status: status, bodyBytes: bodyBytes, duration: duration) }
        }
        observer?.didRespond(to: request, status: status, bodyBytes: bodyBytes, duration: duration)
    }

    /// A request standing for one the protocol could not parse, so that its error answer has an
    /// id and passes the filters like any other.
    func unparsedRequest(method: HTTPMethod, connectionID: UInt64) -> Request {
        var request = Request(head: RequestHead(method: method, target: "/"), connectionID: connectionID)
        request.id = requestIDs.makeID()
        return request
    }

    /// Turns a handler's error into a response; HTTPError renders itself, anything else is a 500.
    func render(_ error: any Error) -> Response {
        errorRenderer(error)
    }
}

/// A handler still at work: a task, or a parked callback. `cancel()` calls it off (the client went
/// away, a drain interrupts it); it still answers, promptly.
struct RunningHandler: Sendable {
    let callOff: @Sendable () -> Void

    func cancel() { callOff() }
}

/// The one answer of a `.parked` handler: delivered inline when it came during the handler's
/// call, else hopped onto the connection's queue; later answers are ignored.
private final class ParkedAnswer: Sendable {
    private enum Phase {
        case inCall(Result<Response, any Error>?)
        case waiting
        case answered
    }

    private let phase = Mutex(Phase.inCall(nil))
    private let queue: DispatchQueue
    private let deliver: @Sendable (Response) -> Void
    private let render: @Sendable (any Error) -> Response

    init(queue: DispatchQueue, deliver: @escaping @Sendable (Response) -> Void,
         render: @escaping @Sendable (any Error) -> Response) {
        self.queue = queue
        self.deliver = deliver
        self.render = render
    }

    /// The handler's answer, from any thread.
    @Sendable func take(_ result: Result<Response, any Error>) {
        let late = phase.withLock { phase -> Bool in
            switch phase {
            case .inCall(nil):
                phase = .inCall(result)
                return false
            case .waiting:
                phase = .answered
                return true
            case .inCall, .answered:
                return false
            }
        }
        guard late else { return }
        let response = response(result)
        queue.async { [deliver] in deliver(response) }
    }

    /// The handler's call returned; delivers an answer it gave meanwhile, inline.
    /// - Returns: whether it had answered.
    func callReturned() -> Bool {
        let early = phase.withLock { phase -> Result<Response, any Error>? in
            guard case .inCall(let result) = phase else { return nil }
            phase = result == nil ? .waiting : .answered
            return result
        }
        guard let early else { return false }
        deliver(response(early))
        return true
    }

    private func response(_ result: Result<Response, any Error>) -> Response {
        switch result {
        case .success(let response): response
        case .failure(let error): render(error)
        }
    }
}
