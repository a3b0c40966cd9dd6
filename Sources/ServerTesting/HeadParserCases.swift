/// The head parser's table of cases: each input, whole, with what it must give (the requests
/// parsed, or the error status). Shared by the parser's tests and the HTTP/1.1 machine's.
public struct HeadParserCase: CustomStringConvertible, Sendable {
    public let name: String
    public let input: String
    public let expected: Expected
    public var description: String { name }

    public enum Expected: Sendable {
        case requests([(method: String, target: String, body: String, keepAlive: Bool)])
        case status(Int)
    }

    public init(name: String, input: String, expected: Expected) {
        self.name = name
        self.input = input
        self.expected = expected
    }

    public static let all: [HeadParserCase] = [
        HeadParserCase(name: "simple GET", input: "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n",
                       expected: .requests([("GET", "/healthz", "", true)])),
        HeadParserCase(name: "leading empty line ignored", input: "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
                       expected: .requests([("GET", "/", "", true)])),
        HeadParserCase(name: "HTTP/1.0 closes by default", input: "GET / HTTP/1.0\r\n\r\n",
                       expected: .requests([("GET", "/", "", false)])),
        HeadParserCase(name: "HTTP/1.0 keep-alive", input: "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                       expected: .requests([("GET", "/", "", true)])),
        HeadParserCase(name: "Connection: close", input: "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
                       expected: .requests([("GET", "/", "", false)])),
        HeadParserCase(name: "content-length body", input: "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
                       expected: .requests([("POST", "/x", "hello", true)])),
        HeadParserCase(name: "equal duplicate content-length", input: "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
                       expected: .requests([("POST", "/x", "abc", true)])),
        HeadParserCase(name: "chunked with extension and trailers",
                       input: "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
                       expected: .requests([("POST", "/c", "hello world", true)])),
        HeadParserCase(name: "three pipelined",
                       input: "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhiGET /3 HTTP/1.1\r\nHost: a\r\n\r\n",
                       expected: .requests([("GET", "/1", "", true), ("POST", "/2", "hi", true), ("GET", "/3", "", true)])),
        HeadParserCase(name: "CL and TE", input: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", expected: .status(400)),
        HeadParserCase(name: "differing content-length", input: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", expected: .status(400)),
        HeadParserCase(name: "signed content-length", input: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc", expected: .status(400)),
        HeadParserCase(name: "obs-fold", input: "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", expected: .status(400)),
        HeadParserCase(name: "bare CR in value", input: "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", expected: .status(400)),
        HeadParserCase(name: "bare LF", input: "GET / HTTP/1.1\nHost: a\r\n\r\n", expected: .status(400)),
        HeadParserCase(name: "space before colon", input: "GET / HTTP/1.1\r\nHost : a\r\n\r\n", expected: .status(400)),
        HeadParserCase(name: "missing host on 1.1", input: "GET / HTTP/1.1\r\nX: y\r\n\r\n", expected: .status(400)),
        HeadParserCase(name: "two hosts", input: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", expected: .status(400)),
        HeadParserCase(name: "malformed chunk size", input: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", expected: .status(400)),
        HeadParserCase(name: "chunk size overflow", input: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", expected: .status(400)),
        HeadParserCase(name: "chunk data without CRLF", input: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n", expected: .status(400)),
        HeadParserCase(name: "unknown transfer coding", input: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", expected: .status(501)),
        HeadParserCase(name: "chunked not last", input: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", expected: .status(400)),
        HeadParserCase(name: "TE on HTTP/1.0", input: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", expected: .status(400)),
        HeadParserCase(name: "HTTP/2.0 version", input: "GET / HTTP/2.0\r\nHost: a\r\n\r\n", expected: .status(505)),
        // RFC 9112 §2.3: a higher minor version is served as the highest supported one.
        HeadParserCase(name: "HTTP/1.2 served as 1.1", input: "GET / HTTP/1.2\r\nHost: a\r\n\r\n", expected: .requests([("GET", "/", "", true)])),
        HeadParserCase(name: "HTTP/2.0 version", input: "GET / HTTP/2.0\r\nHost: a\r\n\r\n", expected: .status(505)),
        HeadParserCase(name: "malformed version", input: "GET / HTTX/1.1\r\nHost: a\r\n\r\n", expected: .status(400)),
        HeadParserCase(name: "unknown expectation", input: "GET / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n", expected: .status(417)),
        HeadParserCase(name: "control char in value", input: "GET / HTTP/1.1\r\nHost: a\r\nX: a\u{01}b\r\n\r\n", expected: .status(400)),
        HeadParserCase(name: "bad method char", input: "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", expected: .status(400)),
    ]
}
