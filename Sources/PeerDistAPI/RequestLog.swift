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
    /// Who made the request (the token's name, never the token); "-" when no one was named
    /// (an open endpoint, a refused request).
    public var principal: String

    init(_ request: Request, status: Int, bodyBytes: Int, duration: Duration) {
        method = request.method.rawValue
        route = request.routeTemplate.isEmpty ? String(request.path) : request.routeTemplate
        self.status = status
        self.duration = duration
        bytes = bodyBytes
        requestID = request.id
        connection = request.connectionID
        principal = request.principal ?? "-"
    }

    /// The line's message.
    public static let message = "request"

    /// A field's value: text, or a number written without building a String for it.
    public enum FieldValue {
        case text(String)
        case integer(Int)
        /// Milliseconds with three decimals (`0.042`).
        case milliseconds(Duration)

        /// The value's bytes, appended.
        public func append(to out: inout [UInt8]) {
            switch self {
            case .text(let text):
                out.append(contentsOf: text.utf8)
            case .integer(let n):
                ResponseHeadSerializer.appendDecimal(n, to: &out)
            case .milliseconds(let d):
                let (seconds, attoseconds) = d.components
                let micros = Int(clamping: max(0, seconds)) &* 1_000_000 &+ Int(clamping: max(0, attoseconds) / 1_000_000_000_000)
                ResponseHeadSerializer.appendDecimal(micros / 1_000, to: &out)
                let fraction = micros % 1_000
                out.append(0x2E)
                out.append(UInt8(0x30 + fraction / 100))
                out.append(UInt8(0x30 + fraction / 10 % 10))
                out.append(UInt8(0x30 + fraction % 10))
            }
        }

        /// The value as text.
        public var text: String {
            if case .text(let text) = self { return text }
            var bytes: [UInt8] = []
            append(to: &bytes)
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    /// Visits the line's fields, sorted by key: the one definition of what a request line carries.
    public func forEachField(_ body: (_ key: String, _ value: FieldValue) -> Void) {
        body("bytes", .integer(bytes))
        body("conn", .integer(Int(truncatingIfNeeded: connection)))
        body("duration_ms", .milliseconds(duration))
        body("method", .text(method))
        body("principal", .text(principal))
        body("request_id", .text(requestID))
        body("route", .text(route))
        body("status", .integer(status))
    }

    /// The fields as text, for a logger.
    public var fields: [(key: String, value: String)] {
        var out: [(key: String, value: String)] = []
        forEachField { out.append(($0, $1.text)) }
        return out
    }
}
