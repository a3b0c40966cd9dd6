import HTTPWire

/// One route: a method, a path template such as `/instances/{h}/ports/{p}`, and its handler.
/// Immutable, and shared by reference: every exchange that matches it holds it, and a class is
/// one reference count to pass around instead of one for each of its fields.
public final class Route: Sendable {
    /// How the handler runs.
    public enum Handler: Sendable {
        /// Runs inline on the connection's worker queue: for handlers that never wait.
        case sync(@Sendable (Request) throws -> Response)
        /// Runs in a task; cancelled when the client goes away.
        case async(@Sendable (Request) async throws -> Response)
        /// Tries `inline` on the worker queue first; only when it returns nil (the answer must
        /// wait) runs `waiting` in a task. For calls whose common outcomes need no waiting.
        case inlineFirst(inline: @Sendable (Request) throws -> Response?, waiting: @Sendable (Request) async throws -> Response)
        /// Answers through the `Responder`, exactly once, from any thread, without a task: for
        /// long-polls that park a callback elsewhere (no task is held while they wait). Returns what
        /// calls the wait off when the client goes away or a drain interrupts it, after which the
        /// handler must still answer, promptly; nil when nothing is left to call off.
        case parked(@Sendable (Request, Responder) throws -> (@Sendable () -> Void)?)
    }

    /// How the request body reaches the handler.
    public enum BodyMode: Sendable {
        /// Read whole before the handler runs, up to the server's `maxBodySize` (413 beyond).
        case buffered
        /// Handed to the handler as a stream while it arrives; a length (Content-Length or
        /// chunked) is required (411 without).
        case streamed
    }

    /// The method.
    public let method: HTTPMethod
    /// The path template.
    public let template: String
    /// The handler.
    public let handler: Handler
    /// How the body is delivered.
    public let bodyMode: BodyMode
    /// Whether a graceful drain may cancel the handler so that it answers at once (long-polls).
    public let interruptibleOnDrain: Bool

    /// Creates a route.
    public init(_ method: HTTPMethod, _ template: String, body: BodyMode = .buffered, interruptibleOnDrain: Bool = false, handler: Handler) {
        self.method = method
        self.template = template
        self.handler = handler
        self.bodyMode = body
        self.interruptibleOnDrain = interruptibleOnDrain
    }

    /// A route whose handler never waits.
    public static func sync(_ method: HTTPMethod, _ template: String, body: BodyMode = .buffered,
                            _ handler: @escaping @Sendable (Request) throws -> Response) -> Route {
        Route(method, template, body: body, handler: .sync(handler))
    }

    /// A route answered inline when it can be, in a task when it must wait.
    public static func inlineFirst(_ method: HTTPMethod, _ template: String, body: BodyMode = .buffered,
                                   inline: @escaping @Sendable (Request) throws -> Response?,
                                   waiting: @escaping @Sendable (Request) async throws -> Response) -> Route {
        Route(method, template, body: body, handler: .inlineFirst(inline: inline, waiting: waiting))
    }

    /// A route whose handler parks a callback instead of waiting in a task.
    public static func parked(_ method: HTTPMethod, _ template: String, interruptibleOnDrain: Bool = false,
                              _ handler: @escaping @Sendable (Request, Responder) throws -> (@Sendable () -> Void)?) -> Route {
        Route(method, template, interruptibleOnDrain: interruptibleOnDrain, handler: .parked(handler))
    }

    /// A route whose handler may wait.
    public static func async(_ method: HTTPMethod, _ template: String, body: BodyMode = .buffered, interruptibleOnDrain: Bool = false,
                             _ handler: @escaping @Sendable (Request) async throws -> Response) -> Route {
        Route(method, template, body: body, interruptibleOnDrain: interruptibleOnDrain, handler: .async(handler))
    }
}

/// How a `.parked` handler answers: call it once, from any thread, with the response or with the
/// error to render. Later calls are ignored.
public struct Responder: Sendable {
    let deliver: @Sendable (Result<Response, any Error>) -> Void

    /// A responder that hands the answer to `deliver` (the exchange runner makes its own; this is
    /// for driving handlers directly, as the fuzzers do).
    public init(_ deliver: @escaping @Sendable (Result<Response, any Error>) -> Void) {
        self.deliver = deliver
    }

    /// Answers with `response`.
    public func callAsFunction(_ response: Response) { deliver(.success(response)) }

    /// Answers with the rendering of `error` (as if the handler had thrown it).
    public func fail(_ error: any Error) { deliver(.failure(error)) }
}
