import HTTPWire

/// gzip for responses, applied above the protocol (h2o's compress filter): only when the client
/// accepts gzip (q-values honoured, `gzip;q=0` refuses), the body is at least the minimum size,
/// its type compresses well (JSON, problem+json, YAML, text), the status carries a body, and the
/// handler set no Content-Encoding of its own. Octet streams (content information) are dense and
/// left alone.
enum ResponseCompression {
    /// Compresses `response` in place when the rules allow.
    static func apply(_ response: inout Response, request: Request, minimumBytes: Int) {
        guard minimumBytes > 0, response.body.count >= minimumBytes,
              response.status >= 200, response.status != 204, response.status != 304,
              !response.headers.contains("Content-Encoding"),
              isCompressible(response.headers["Content-Type"]) else { return }
        response.headers.append(name: "Vary", value: "Accept-Encoding")
        guard acceptsGzip(request.headers), let compressed = Gzip.compress(response.body),
              compressed.count < response.body.count else { return }
        response.body = compressed
        response.headers.append(name: "Content-Encoding", value: "gzip")
    }

    /// Whether Accept-Encoding allows gzip (RFC 9110 §12.5.3).
    static func acceptsGzip(_ fields: HTTPFields) -> Bool {
        var gzip: Double?
        var any: Double?
        for token in fields.tokens("Accept-Encoding") {
            let parts = token.split(separator: ";")
            let coding = parts[0].trimmingASCIIWhitespace()
            var q = 1.0
            for parameter in parts.dropFirst() {
                let kv = parameter.split(separator: "=", maxSplits: 1)
                if kv.count == 2, kv[0].trimmingASCIIWhitespace() == "q" {
                    q = Double(kv[1].trimmingASCIIWhitespace()) ?? 0
                }
            }
            if coding == "gzip" || coding == "x-gzip" { gzip = q } else if coding == "*" { any = q }
        }
        return (gzip ?? any ?? 0) > 0
    }

    private static func isCompressible(_ contentType: String?) -> Bool {
        guard let type = contentType?.lowercased() else { return false }
        return type.hasPrefix("application/json") || type.hasPrefix("application/problem+json")
            || type.hasPrefix("application/yaml") || type.hasPrefix("text/")
    }
}
