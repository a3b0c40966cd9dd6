import HTTPWire

/// The single renderer of error bodies: `application/problem+json` (RFC 9457) with `code` and
/// `error`. Handlers never format error bodies themselves.
public enum ProblemResponse {
    /// Renders an `HTTPError` as a response.
    public static func make(_ error: HTTPError) -> Response {
        var body = "{\"type\":\"about:blank\",\"title\":"
        appendJSONString(error.title ?? defaultTitle(error.status), to: &body)
        body += ",\"status\":\(error.status),\"detail\":"
        appendJSONString(error.detail, to: &body)
        body += ",\"code\":\(error.code),\"error\":"
        appendJSONString(error.name, to: &body)
        body += "}"
        var headers = error.headers
        headers.append(name: "Content-Type", value: "application/problem+json")
        var response = Response(status: error.status, headers: headers, body: Array(body.utf8))
        response.closeConnection = error.closeConnection
        return response
    }

    private static func defaultTitle(_ status: Int) -> String {
        let reason = HTTPStatusText.reason(status)
        return reason.isEmpty ? "Error" : reason
    }

    /// Appends `s` as a JSON string literal (RFC 8259 §7).
    public static func appendJSONString(_ s: String, to out: inout String) {
        out.append("\"")
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out.append("\\\"")
            case "\\": out.append("\\\\")
            case "\n": out.append("\\n")
            case "\r": out.append("\\r")
            case "\t": out.append("\\t")
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out.append("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out.append("\"")
    }
}
