import HTTPWire

/// The single renderer of error bodies: `application/problem+json` (RFC 9457) with `code` and
/// `error`. Handlers never format error bodies themselves.
public enum ProblemResponse {
    /// Renders an `HTTPError` as a response.
    public static func make(_ error: HTTPError) -> Response {
        var body: [UInt8] = []
        body.reserveCapacity(160 + error.detail.utf8.count)
        body.append(contentsOf: #"{"type":"about:blank","title":"#.utf8)
        JSONText.appendString(error.title ?? defaultTitle(error.status), to: &body)
        body.append(contentsOf: #","status":"#.utf8)
        JSONText.appendInteger(error.status, to: &body)
        body.append(contentsOf: #","detail":"#.utf8)
        JSONText.appendString(error.detail, to: &body)
        body.append(contentsOf: #","code":"#.utf8)
        JSONText.appendInteger(error.code, to: &body)
        body.append(contentsOf: #","error":"#.utf8)
        JSONText.appendString(error.name, to: &body)
        body.append(0x7D)
        var headers = error.headers
        headers.append(name: "Content-Type", value: "application/problem+json")
        var response = Response(status: error.status, headers: headers, body: body)
        response.closeConnection = error.closeConnection
        response.isAccessRefusal = (error.status == 401 || error.status == 403) && error.code == HTTPError.win32(forHTTPStatus: 401).0
        return response
    }

    private static func defaultTitle(_ status: Int) -> String {
        let reason = HTTPStatusText.reason(status)
        return reason.isEmpty ? "Error" : reason
    }
}
