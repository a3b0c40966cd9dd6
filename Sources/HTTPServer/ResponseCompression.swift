import HTTPWire

/// gzip for responses, applied above the protocol (h2o's compress filter): only when the client
/// accepts gzip (q-values honoured, `gzip;q=0` refuses), the body is at least the minimum size,
/// its type compresses well (JSON, problem+json, YAML, text), the status carries a body, and the
/// handler set no Content-Encoding of its own. Octet streams (content information) are dense and
/// left alone.
package enum ResponseCompression {
    /// Compresses `response` in place when the rules allow.
    package static func apply(_ response: inout Response, request: Request, minimumBytes: Int) {
        guard minimumBytes > 0, response.body.count >= minimumBytes,
              HTTPStatusText.carriesContent(response.status),
              !response.headers.contains("Content-Encoding"),
              isCompressible(response.headers["Content-Type"]) else { return }
        response.headers.append(name: "Vary", value: "Accept-Encoding")
        guard request.acceptsGzip, let compressed = Gzip.compress(response.body),
              compressed.count < response.body.count else { return }
        response.body = compressed
        response.headers.append(name: "Content-Encoding", value: "gzip")
    }

    private static func isCompressible(_ contentType: String?) -> Bool {
        guard let type = contentType?.lowercased() else { return false }
        return type.hasPrefix("application/json") || type.hasPrefix("application/problem+json")
            || type.hasPrefix("application/yaml") || type.hasPrefix("text/")
    }
}
