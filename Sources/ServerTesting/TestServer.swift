import HTTPServer
import Glibc
import Logging

/// A real server on 127.0.0.1, port 0, for tests.
public final class TestServer: Sendable {
    /// The server.
    public let server: HTTPServer
    /// The port it listens on.
    public let port: Int

    /// Starts a server with these routes and configuration (host and port are overridden).
    public convenience init(routes: [Route], configuration: ServerConfiguration = ServerConfiguration(),
                errorRenderer: @escaping @Sendable (any Error) -> Response = HTTPServer.defaultErrorRenderer) throws {
        try self.init(router: Router(routes), configuration: configuration, errorRenderer: errorRenderer)
    }

    /// Starts a server with this router and configuration (host and port are overridden).
    public init(router: Router, configuration: ServerConfiguration = ServerConfiguration(),
                observer: (any RequestObserver)? = nil, filters: [any ExchangeFilter] = [],
                errorRenderer: @escaping @Sendable (any Error) -> Response = HTTPServer.defaultErrorRenderer) throws {
        var configuration = configuration
        configuration.host = "127.0.0.1"
        configuration.port = 0
        var logger = Logger(label: "test")
        // PEERDIST_TEST_LOG=1 shows the servers' own log lines (why a connection ended, say).
        logger.logLevel = getenv("PEERDIST_TEST_LOG") == nil ? .critical : .debug
        server = HTTPServer(configuration: configuration, router: router, logger: logger, observer: observer, filters: filters, errorRenderer: errorRenderer)
        port = try server.start().port
    }

    /// Connects a raw client.
    public func client() async throws -> RawHTTPClient { try await RawHTTPClient.connect(port: port) }

    /// Drains and stops.
    public func stop() async { await server.drain() }
}
