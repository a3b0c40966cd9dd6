import HTTPWire

/// One route: a method, a path template such as `/instances/{h}/ports/{p}`, and its handler.
public struct Route: Sendable {
    /// How the handler runs.
    public enum Handler: Sendable {
        /// Runs inline on the connection's worker queue: for handlers that never wait.
        case sync(@Sendable (Request) throws -> Response)
        /// Runs in a task; cancelled when the client goes away.
        case async(@Sendable (Request) async throws -> Response)
        /// Tries `inline` on the worker queue first; only when it returns nil (the answer must
        /// wait) runs `waiting` in a task. For calls whose common outcomes need no waiting.
        case inlineFirst(inline: @Sendable (Request) throws -> Response?, waiting: @Sendable (Request) async throws -> Response)
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

    /// A route whose handler may wait.
    public static func async(_ method: HTTPMethod, _ template: String, body: BodyMode = .buffered, interruptibleOnDrain: Bool = false,
                             _ handler: @escaping @Sendable (Request) async throws -> Response) -> Route {
        Route(method, template, body: body, interruptibleOnDrain: interruptibleOnDrain, handler: .async(handler))
    }
}
