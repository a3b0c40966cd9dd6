import HTTPWire

/// A response as handlers produce it; the server adds Date, Content-Length and Connection.
public struct Response: Sendable {
    /// The status code.
    public var status: Int
    /// Header fields (never Content-Length, Transfer-Encoding, Connection or Date).
    public var headers: HTTPFields
    /// The body bytes.
    public var body: [UInt8]
    /// Called once with `true` when the whole response has been handed to the kernel, or with
    /// `false` when it could not be (the client went away). Lets a handler put back what the
    /// answer carried, such as dequeued completions.
    public var onWritten: (@Sendable (Bool) -> Void)?
    /// Whether the connection closes after this response (`Connection: close`).
    public var closeConnection = false
    /// Whether this refuses the caller's credentials: a 401, or a 403 for want of the right token
    /// (`ERROR_ACCESS_DENIED`, not a policy's 403). Counted per client address, and held past an
    /// allowance (`ServerConfiguration.refusalsBeforeDelay`).
    public var isAccessRefusal = false

    /// Creates a response.
    public init(status: Int, headers: HTTPFields = HTTPFields(), body: [UInt8] = [], onWritten: (@Sendable (Bool) -> Void)? = nil) {
        self.status = status
        self.headers = headers
        self.body = body
        self.onWritten = onWritten
    }

    /// A JSON response from already-encoded bytes.
    public static func json(_ status: Int, _ body: [UInt8], headers: HTTPFields = HTTPFields()) -> Response {
        var h = headers
        h.append(name: "Content-Type", value: "application/json")
        return Response(status: status, headers: h, body: body)
    }

    /// A JSON response from a UTF-8 string.
    public static func json(_ status: Int, _ text: String, headers: HTTPFields = HTTPFields()) -> Response {
        json(status, Array(text.utf8), headers: headers)
    }
}
