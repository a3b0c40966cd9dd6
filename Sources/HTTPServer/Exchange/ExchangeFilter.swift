import HTTPWire
import Transport

/// One link of the chain every exchange passes through, whatever its protocol: before routing
/// (it may adjust the request, or refuse it by throwing), after the handler (it may transform the
/// response), and once the answer is queued (logs, metrics). Hooks are synchronous so that an
/// exchange answered inline on its worker queue stays inline.
public protocol ExchangeFilter: Sendable {
    /// Before routing. A thrown error is rendered as the answer (an authentication filter's 401).
    func willRoute(_ request: inout Request) throws
    /// After the handler, before the answer is written.
    func willRespond(_ response: inout Response, to request: Request)
    /// The answer was queued (`bodyBytes` of body will be sent).
    func didRespond(to request: Request, status: Int, bodyBytes: Int, duration: Duration)
}

extension ExchangeFilter {
    public func willRoute(_ request: inout Request) throws {}
    public func willRespond(_ response: inout Response, to request: Request) {}
    public func didRespond(to request: Request, status: Int, bodyBytes: Int, duration: Duration) {}
}

/// Gives every request an id, the client's `X-Request-Id` when usable, else one made here, and
/// sends it back.
struct RequestIDFilter: ExchangeFilter {
    private let counter = AtomicCounter()
    private let prefix = String(UInt32.random(in: 0...UInt32.max), radix: 16)

    /// A new id, unique in this process and unlikely to repeat across restarts.
    func makeID() -> String {
        "\(prefix)-\(String(counter.increment(), radix: 16))"
    }

    func willRoute(_ request: inout Request) throws {
        request.id = Request.usableRequestID(request.headers) ?? makeID()
    }

    func willRespond(_ response: inout Response, to request: Request) {
        if !request.id.isEmpty { response.headers.append(name: "X-Request-Id", value: request.id) }
    }
}

/// Refuses, before any other filter or the router sees it, a request whose path does not begin
/// with `/` (asterisk-form `*`, authority-form `host:port`, which the protocols let through for
/// OPTIONS and CONNECT): the router reads the first segment as the empty one before the first
/// `/`, so such a path would reach a route by a different spelling than the one a filter checks.
struct TargetFormFilter: ExchangeFilter {
    func willRoute(_ request: inout Request) throws {
        guard request.path.utf8.first == UInt8(ascii: "/") else {
            throw HTTPError.http(400, "the request-target must begin with '/'")
        }
    }
}

/// gzip for responses the client accepts it for (see `ResponseCompression`).
struct CompressionFilter: ExchangeFilter {
    let minimumBytes: Int

    func willRespond(_ response: inout Response, to request: Request) {
        ResponseCompression.apply(&response, request: request, minimumBytes: minimumBytes)
    }
}

/// Hands every answered request and connection to the server's observer (request log, metrics).
struct ObserverFilter: ExchangeFilter {
    let observer: any RequestObserver

    func didRespond(to request: Request, status: Int, bodyBytes: Int, duration: Duration) {
        observer.requestCompleted(request, status: status, bodyBytes: bodyBytes, duration: duration)
    }
}
