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
    private let requestIDs = RequestIDFilter()
    /// In order: request ids, the target-form check, the server's own filters (authentication goes here), compression,
    /// the observer.
    private let filters: [any ExchangeFilter]
    private let errorRenderer: @Sendable (any Error) -> Response
    /// How long a handler's 429 is held before it is delivered (`ServerConfiguration`); nil = not held.
    private let tooManyRequestsDelay: DispatchTimeInterval?

    /// What routing decided.
    enum Routing {
        /// Run this route's handler (its parameters and template are set on the request).
        case route(Route)
        /// Answer this without a handler (no route, a method not allowed, a filter's refusal).
        case answer(Response)
    }

    init(router: Router, filters: [any ExchangeFilter], compressionMinimumBytes: Int, tooManyRequestsDelay: Duration,
         observer: (any RequestObserver)?, errorRenderer: @escaping @Sendable (any Error) -> Response) {
        self.router = router
        let (seconds, attoseconds) = tooManyRequestsDelay.components
        self.tooManyRequestsDelay = tooManyRequestsDelay > .zero
            ? .nanoseconds(Int(min(seconds, 3_600)) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)) : nil
        self.errorRenderer = errorRenderer
        var chain: [any ExchangeFilter] = [requestIDs, TargetFormFilter()]
        chain += filters
        chain.append(CompressionFilter(minimumBytes: compressionMinimumBytes))
        if let observer { chain.append(ObserverFilter(observer: observer)) }
        self.filters = chain
    }

    /// Passes the request through the filters and the router.
    func route(_ request: inout Request) -> Routing {
        do {
            for filter in filters { try filter.willRoute(&request) }
        } catch {
            return .answer(render(error))
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

    /// Runs the handler. `deliver` gets its answer exactly once, on `queue`: inline, during
    /// this call, when the handler answered without waiting (a 429 comes `tooManyRequestsDelay`
    /// later instead).
    /// - Returns: a handler that waits, to call off when its client goes away.
    func invoke(_ route: Route, _ request: Request, on queue: DispatchQueue,
                deliver: @escaping @Sendable (Response) -> Void) -> RunningHandler? {
        switch route.handler {
        case .sync(let handler):
            let response: Response
            do { response = try handler(request) } catch { response = render(error) }
            hand(response, to: deliver, on: queue)
            return nil
        case .async(let handler):
            return start(handler, request, on: queue, deliver: deliver)
        case .inlineFirst(let inline, let waiting):
            let immediate: Response?
            do { immediate = try inline(request) } catch { immediate = render(error) }
            if let immediate {
                hand(immediate, to: deliver, on: queue)
                return nil
            }
            return start(waiting, request, on: queue, deliver: deliver)
        case .parked(let handler):
            let answer = ParkedAnswer(queue: queue, deliver: { [self] in hand($0, to: deliver, on: queue) }, render: render)
            var callOff: (@Sendable () -> Void)?
            do { callOff = try handler(request, Responder(answer.take)) } catch { answer.take(.failure(error)) }
            if answer.callReturned() { return nil }
            return callOff.map { RunningHandler(callOff: $0) }
        }
    }

    /// Gives `response` to `deliver`, on `queue` (where this is called): now, or a 429
    /// `tooManyRequestsDelay` later.
    private func hand(_ response: Response, to deliver: @escaping @Sendable (Response) -> Void, on queue: DispatchQueue) {
        guard response.status == 429, let delay = tooManyRequestsDelay else { return deliver(response) }
        queue.asyncAfter(deadline: .now() + delay) { deliver(response) }
    }

    private func start(_ handler: @escaping @Sendable (Request) async throws -> Response, _ request: Request,
                       on queue: DispatchQueue, deliver: @escaping @Sendable (Response) -> Void) -> RunningHandler {
        let task = Task { [self] in
            let response: Response
            do { response = try await handler(request) } catch { response = render(error) }
            queue.async { [self] in hand(response, to: deliver, on: queue) }
        }
        return RunningHandler { task.cancel() }
    }

    /// The filters' last word before the answer is written.
    func willRespond(_ response: inout Response, to request: Request) {
        for filter in filters { filter.willRespond(&response, to: request) }
    }

    /// The answer was queued.
    func didRespond(to request: Request, status: Int, bodyBytes: Int) {
        let duration = ContinuousClock.now - request.receivedAt
        for filter in filters { filter.didRespond(to: request, status: status, bodyBytes: bodyBytes, duration: duration) }
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
