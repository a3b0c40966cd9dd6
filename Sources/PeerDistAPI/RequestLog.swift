import HTTPServer

/// What the per-request log line says, taken on the worker queue in a few stores so that the
/// line itself can be formatted and written elsewhere (off the worker queues).
public struct RequestLogRecord: Sendable {
    /// The method token.
    public var method: String
    /// The route template, or the path when no route matched.
    public var route: String
    /// The status answered.
    public var status: Int
    /// From the parsed head to the queued answer.
    public var duration: Duration
    /// Response body bytes.
    public var bytes: Int
    /// The request id (echoed in `X-Request-Id`).
    public var requestID: String
    /// The connection's id.
    public var connection: UInt64

    init(_ request: Request, status: Int, bodyBytes: Int, duration: Duration) {
        method = request.method.rawValue
        route = request.routeTemplate.isEmpty ? String(request.path) : request.routeTemplate
        self.status = status
        self.duration = duration
        bytes = bodyBytes
        requestID = request.id
        connection = request.connectionID
    }

    /// The line's message.
    public static let message = "request"

    /// Milliseconds with three decimals (`0.042`), without going through Double formatting.
    static func milliseconds(_ d: Duration) -> String {
        let (seconds, attoseconds) = d.components
        let micros = max(0, seconds) &* 1_000_000 &+ max(0, attoseconds) / 1_000_000_000_000
        let fraction = String(micros % 1_000)
        return String(micros / 1_000) + "." + String(repeating: "0", count: 3 - fraction.utf8.count) + fraction
    }

    /// The line's fields, sorted by key: the one definition of what a request line carries.
    public var fields: [(key: String, value: String)] {
        return [
            ("bytes", String(bytes)),
            ("conn", String(connection)),
            ("duration_ms", Self.milliseconds(duration)),
            ("method", method),
            ("request_id", requestID),
            ("route", route),
            ("status", String(status)),
        ]
    }
}
