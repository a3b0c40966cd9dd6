import HTTPServer
import PeerDistEngine
import Synchronization

/// Process-level state the operational endpoints report.
public final class ServiceLifecycle: Sendable {
    private let draining = Atomic<Bool>(false)

    /// Creates the state (not draining).
    public init() {}

    /// Whether a graceful drain has begun.
    public var isDraining: Bool { draining.load(ordering: .relaxed) }

    /// Marks the drain as begun: readiness answers 503 from now on.
    public func beginDrain() { draining.store(true, ordering: .relaxed) }
}

/// `GET /healthz`, `GET /readyz`, `GET /openapi.yaml`.
enum OperationalRoutes {
    private static let ready: [UInt8] = Array(#"{"status":"ready"}"#.utf8)
    /// openapi.yaml byte for byte: the embedding multi-line literal drops the file's final newline.
    private static let openAPIBytes: [UInt8] = Array((OpenAPIDocument.yaml + "\n").utf8)

    /// `GET /healthz`: alive, with the instances open against the global cap; `nearCap` once
    /// fewer are free than one principal may open (one principal could then fill it).
    static func health(_ engine: PeerDistEngine) -> Response {
        let open = engine.instanceCount
        let limits = engine.limits
        let near = limits.maxInstances - open < limits.maxInstancesPerPrincipal
        return .json(200, .object([
            ("status", .string("ok")),
            ("instances", .object([("open", .int(open)), ("max", .int(limits.maxInstances)), ("nearCap", .bool(near))])),
        ]))
    }

    static func routes(lifecycle: ServiceLifecycle, retryAfterSeconds: Int, metrics: ServiceMetrics, engine: PeerDistEngine) -> [Route] {
        [
            .sync(.get, "/metrics") { _ in
                var headers = HTTPFields()
                headers.append(name: "Content-Type", value: "text/plain; version=0.0.4; charset=utf-8")
                return Response(status: 200, headers: headers, body: metrics.render(engine: engine))
            },
            .sync(.get, "/healthz") { _ in health(engine) },
            .sync(.get, "/readyz") { _ in
                guard !lifecycle.isDraining else {
                    var headers = HTTPFields()
                    headers.append(name: "Retry-After", value: String(retryAfterSeconds))
                    throw HTTPError.http(503, "the service is draining", headers: headers)
                }
                return .json(200, ready)
            },
            .sync(.get, "/openapi.yaml") { _ in
                var headers = HTTPFields()
                headers.append(name: "Content-Type", value: "application/yaml")
                return Response(status: 200, headers: headers, body: openAPIBytes)
            },
        ]
    }
}
