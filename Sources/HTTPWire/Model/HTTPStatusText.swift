/// Reason phrases for the status codes this server sends (RFC 9110 §15).
public enum HTTPStatusText {
    /// Whether an answer with this status carries content (RFC 9110 §6.4.1: not 1xx, 204, 304).
    /// The one place this is decided: framing, Content-Length and compression follow it.
    @inline(__always)
    public static func carriesContent(_ status: Int) -> Bool {
        status >= 200 && status != 204 && status != 304
    }

    /// The reason phrase of a status code ("" when unknown; the phrase is optional on the wire).
    public static func reason(_ status: Int) -> String {
        switch status {
        case 100: "Continue"
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 204: "No Content"
        case 304: "Not Modified"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 406: "Not Acceptable"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 410: "Gone"
        case 411: "Length Required"
        case 413: "Content Too Large"
        case 414: "URI Too Long"
        case 415: "Unsupported Media Type"
        case 416: "Range Not Satisfiable"
        case 417: "Expectation Failed"
        case 421: "Misdirected Request"
        case 422: "Unprocessable Content"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 503: "Service Unavailable"
        case 505: "HTTP Version Not Supported"
        default: ""
        }
    }
}
