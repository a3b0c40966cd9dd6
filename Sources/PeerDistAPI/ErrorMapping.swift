import HTTPServer
import PeerDistEngine

/// The one place that maps errors to HTTP status and problem+json (API.md, error table).
enum ErrorMapping {
    static func response(for error: any Error) -> Response {
        switch error {
        case let error as HTTPError:
            return ProblemResponse.make(error)
        case let error as EngineError:
            return ProblemResponse.make(httpError(error))
        default:
            return ProblemResponse.make(.http(500, "internal error"))
        }
    }

    static func httpError(_ error: EngineError) -> HTTPError {
        var headers = HTTPFields()
        let status = error.isTooLarge ? 413 : status(for: error.code)
        if status == 503 || status == 429 {
            headers.append(name: "Retry-After", value: String(error.retryAfterSeconds ?? 5))
        }
        return HTTPError(status: status, code: Int(error.code.code), name: error.code.name, title: title(for: error.code),
                         detail: error.detail, headers: headers)
    }

    /// API.md "Error codes and their HTTP status".
    static func status(for code: Win32Error) -> Int {
        switch code.code {
        case 6, 1168, 4054, 4059: 404
        case 87, 4050, 4062: 400
        case 735, 4057: 410
        // An ended read's buffer, released to keep its instance within its bound.
        case 1931: 410
        // A wait that its instance's shutdown or its port's close aborted: what it waited on is gone.
        case 995: 410
        case 1260, 4064, 4066, 5: 403
        case 4051: 422
        case 4055, 4056, 4058, 4060: 409
        case 4061: 416
        case 4065: 503
        case 1816: 429
        case 996: 409
        // Only POST /admin/clock/advance: the clock is the system clock.
        case 50: 409
        default: 500
        }
    }

    private static func title(for code: Win32Error) -> String? {
        switch code.code {
        case 6: "Invalid handle"
        case 87: "Invalid parameter"
        case 735: "Port closed"
        case 1168: "Content not published"
        case 1260: "Disabled by policy"
        case 1816: "Quota exceeded"
        case 1931: "Buffer released"
        case 4057: "Handle invalidated"
        case 4058: "Already exists"
        case 4059: "Operation not found"
        case 4060: "Already completed"
        case 4061: "Out of bounds"
        case 4062: "Version unsupported"
        case 4065: "Service unavailable"
        default: nil
        }
    }
}
