import HTTPWire

/// How an answer goes on the wire, decided once for HTTP/1.1 and HTTP/2: whether its body is
/// sent (never to HEAD, nor with a status that has no content), the fields it carries (the
/// handler's, less the hop-by-hop ones each protocol owns), and what its write commits: a
/// long-poll's completions are delivered only when the body carrying them was sent and the
/// kernel took it, and requeued otherwise (a HEAD answer, a failed write).
struct ResponseFraming {
    /// Fields a handler might set that belong to one connection, not to the answer
    /// (RFC 9110 §7.6.1, RFC 9113 §8.2.2): the protocol writes its own.
    static let hopByHop = ["Connection"]

    let status: Int
    /// The answer's fields, without the hop-by-hop ones.
    let fields: HTTPFields
    /// Whether the body goes out.
    let sendsBody: Bool
    /// The body's length as the handler made it (HTTP/1.1's Content-Length, HEAD included).
    let contentLength: Int
    /// Body bytes sent (0 when none is): for metrics and the request log.
    var sentBodyBytes: Int { sendsBody ? contentLength : 0 }
    /// The commit to call once the write finished: with whether the body reached the kernel.
    let commit: (@Sendable (Bool) -> Void)?

    init(_ response: Response, method: HTTPMethod) {
        status = response.status
        var fields = response.headers
        for name in Self.hopByHop { fields.remove(name) }
        self.fields = fields
        sendsBody = method != .head && HTTPStatusText.carriesContent(response.status)
        contentLength = response.body.count
        if let onWritten = response.onWritten {
            let sent = sendsBody
            commit = { ok in onWritten(ok && sent) }
        } else {
            commit = nil
        }
    }
}
