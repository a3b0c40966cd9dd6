import HTTPWire

/// The rules both protocols apply to request bodies: which codings are taken, how far a body may
/// grow, and the answers past each bound.
struct RequestBodyPolicy: Sendable {
    /// Largest buffered (JSON) body.
    let maxBodySize: Int
    /// Most bytes a gzip body may inflate to per byte received (past `GzipDecoder.ratioFloor`).
    let maxInflationRatio: Int
    /// Largest unread body skipped to keep a connection (HTTP/1.1) after an early answer.
    let maxDrainBytes: Int
    /// Time allowed between two reads of a body (408).
    let bodyTimeout: Duration
    /// Slowest body accepted, bytes per second (0: no check), once `minDataRateGrace` passed (408).
    let minDataRate: Int
    let minDataRateGrace: Duration

    init(_ configuration: ServerConfiguration) {
        maxBodySize = configuration.maxBodySize
        maxInflationRatio = configuration.maxInflationRatio
        maxDrainBytes = configuration.maxDrainBytes
        bodyTimeout = configuration.bodyTimeout
        minDataRate = configuration.minBodyDataRate
        minDataRateGrace = configuration.minBodyDataRateGrace
    }

    /// How a body is to be decoded before its sink.
    enum Decoding {
        case identity
        /// Inflated as it arrives (`Content-Encoding: gzip` or `x-gzip`).
        case inflate(GzipDecoder)
        /// A coding the server does not take: answer this (415).
        case refused(Response)
    }

    /// The decoding of a request's body (RFC 9110 §8.4), bounded by the route's own limit.
    func decoding(for request: Request, bodyMode: Route.BodyMode) -> Decoding {
        guard request.headers.contains("Content-Encoding") else { return .identity }
        let codings = (FieldList.parse(request.headers, "Content-Encoding") ?? [FieldListElement(item: "?")])
            .filter { $0.item != "identity" }
        if codings.isEmpty { return .identity }
        if codings.count == 1, codings[0].item == "gzip" || codings[0].item == "x-gzip" {
            let limit = bodyMode == .buffered ? maxBodySize : Int.max
            return .inflate(GzipDecoder(limit: limit, maxRatio: maxInflationRatio))
        }
        let names = request.headers.values("Content-Encoding").joined(separator: ", ")
        return .refused(ProblemResponse.make(.http(415, "request bodies in Content-Encoding '\(names)' are not accepted (gzip is)")))
    }

    /// The answer to a buffered body past `maxBodySize`.
    var tooLarge: HTTPError { .http(413, "request body exceeds \(maxBodySize) bytes") }

    /// The answer to a body that stopped arriving for `bodyTimeout`.
    var timedOut: HTTPError { .http(408, "request body not received in time", closeConnection: true) }

    /// The answer to a body that arrives slower than `minDataRate`.
    var tooSlow: HTTPError {
        .http(408, "request body arrives slower than \(minDataRate) bytes/s", closeConnection: true)
    }

    /// The answer to a gzip body that inflates past its limit or ratio.
    var inflatesTooFar: HTTPError {
        .http(413, "the gzip request body inflates past the body limit or \(maxInflationRatio) times its size")
    }
}
