import HTTPWire
import ServerTesting
import Testing

/// Every parser case runs whole, byte by byte and split at every index, and must agree.
@Suite struct RequestParsingTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let input: String
        let expected: Expected
        var testDescription: String { name }
    }

    enum Expected: Sendable {
        case requests([(method: String, target: String, body: String, keepAlive: Bool)])
        case status(Int)
    }

    static let cases: [Case] = [
        Case(name: "simple GET", input: "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n",
             expected: .requests([("GET", "/healthz", "", true)])),
        Case(name: "leading empty line ignored", input: "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
             expected: .requests([("GET", "/", "", true)])),
        Case(name: "HTTP/1.0 closes by default", input: "GET / HTTP/1.0\r\n\r\n",
             expected: .requests([("GET", "/", "", false)])),
        Case(name: "HTTP/1.0 keep-alive", input: "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
             expected: .requests([("GET", "/", "", true)])),
        Case(name: "Connection: close", input: "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
             expected: .requests([("GET", "/", "", false)])),
        Case(name: "content-length body", input: "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
             expected: .requests([("POST", "/x", "hello", true)])),
        Case(name: "equal duplicate content-length", input: "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
             expected: .requests([("POST", "/x", "abc", true)])),
        Case(name: "chunked with extension and trailers",
             input: "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
             expected: .requests([("POST", "/c", "hello world", true)])),
        Case(name: "three pipelined",
             input: "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhiGET /3 HTTP/1.1\r\nHost: a\r\n\r\n",
             expected: .requests([("GET", "/1", "", true), ("POST", "/2", "hi", true), ("GET", "/3", "", true)])),
        Case(name: "CL and TE", input: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", expected: .status(400)),
        Case(name: "differing content-length", input: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", expected: .status(400)),
        Case(name: "signed content-length", input: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc", expected: .status(400)),
        Case(name: "obs-fold", input: "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", expected: .status(400)),
        Case(name: "bare CR in value", input: "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", expected: .status(400)),
        Case(name: "bare LF", input: "GET / HTTP/1.1\nHost: a\r\n\r\n", expected: .status(400)),
        Case(name: "space before colon", input: "GET / HTTP/1.1\r\nHost : a\r\n\r\n", expected: .status(400)),
        Case(name: "missing host on 1.1", input: "GET / HTTP/1.1\r\nX: y\r\n\r\n", expected: .status(400)),
        Case(name: "two hosts", input: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", expected: .status(400)),
        Case(name: "malformed chunk size", input: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", expected: .status(400)),
        Case(name: "chunk size overflow", input: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", expected: .status(400)),
        Case(name: "chunk data without CRLF", input: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n", expected: .status(400)),
        Case(name: "unknown transfer coding", input: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", expected: .status(501)),
        Case(name: "chunked not last", input: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", expected: .status(400)),
        Case(name: "TE on HTTP/1.0", input: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", expected: .status(400)),
        Case(name: "HTTP/2.0 version", input: "GET / HTTP/2.0\r\nHost: a\r\n\r\n", expected: .status(505)),
        // RFC 9112 §2.3: a higher minor version is served as the highest supported one.
        Case(name: "HTTP/1.2 served as 1.1", input: "GET / HTTP/1.2\r\nHost: a\r\n\r\n", expected: .requests([("GET", "/", "", true)])),
        Case(name: "HTTP/2.0 version", input: "GET / HTTP/2.0\r\nHost: a\r\n\r\n", expected: .status(505)),
        Case(name: "malformed version", input: "GET / HTTX/1.1\r\nHost: a\r\n\r\n", expected: .status(400)),
        Case(name: "unknown expectation", input: "GET / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n", expected: .status(417)),
        Case(name: "control char in value", input: "GET / HTTP/1.1\r\nHost: a\r\nX: a\u{01}b\r\n\r\n", expected: .status(400)),
        Case(name: "bad method char", input: "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", expected: .status(400)),
    ]

    @Test(arguments: cases)
    func dripFeedAgrees(_ c: Case) {
        let input = Array(c.input.utf8)
        let (whole, mismatch) = DripFeedVerifier.verify(input)
        #expect(mismatch == nil, "feeding \(String(describing: mismatch?.feeding)) gave \(String(describing: mismatch?.outcome)), whole gave \(whole)")
        switch c.expected {
        case .status(let status):
            #expect(whole == .failed(status: status))
        case .requests(let expected):
            guard case .parsed(let requests) = whole else {
                Issue.record("expected requests, got \(whole)")
                return
            }
            #expect(requests.count == expected.count)
            for (got, want) in zip(requests, expected) {
                #expect(got.method == want.method)
                #expect(got.target == want.target)
                #expect(String(decoding: got.body, as: UTF8.self) == want.body)
                #expect(got.keepAlive == want.keepAlive)
            }
        }
    }

    @Test func headTooLargeIs431() {
        let limits = HTTP1Limits(maxHeadBytes: 256)
        let input = Array("GET / HTTP/1.1\r\nHost: a\r\nX: \(String(repeating: "a", count: 400))\r\n\r\n".utf8)
        #expect(DripFeedVerifier.verify(input, limits: limits).whole == .failed(status: 431))
        // Even before the blank line arrives, the head is known to be too large.
        #expect(DripFeedVerifier.run(Array(input[0..<300]), slices: [0..<300], limits: limits) == .failed(status: 431))
    }

    @Test func tooManyFieldsIs431() {
        let limits = HTTP1Limits(maxHeaderCount: 5)
        let fields = (0..<6).map { "X-\($0): v\r\n" }.joined()
        let input = Array("GET / HTTP/1.1\r\nHost: a\r\n\(fields)\r\n".utf8)
        #expect(DripFeedVerifier.verify(input, limits: limits).whole == .failed(status: 431))
    }

    @Test func targetTooLongIs414() {
        let limits = HTTP1Limits(maxTargetLength: 100)
        let input = Array("GET /\(String(repeating: "a", count: 150)) HTTP/1.1\r\nHost: a\r\n\r\n".utf8)
        #expect(DripFeedVerifier.verify(input, limits: limits).whole == .failed(status: 414))
    }

    @Test func trailersTooLargeIs431() {
        let limits = HTTP1Limits(maxTrailerBytes: 16)
        let input = Array("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: \(String(repeating: "b", count: 40))\r\n\r\n".utf8)
        #expect(DripFeedVerifier.verify(input, limits: limits).whole == .failed(status: 431))
    }

    @Test func duplicateFieldsKeptInOrder() throws {
        var parser = RequestHeadParser(limits: HTTP1Limits())
        let input = Array("GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nx-a: 2\r\n\r\n".utf8)
        let result = try input.withUnsafeBytes { buf throws(HTTP1ParseError) in try parser.parse(buf) }
        guard case .complete(let head, let consumed) = result else {
            Issue.record("incomplete")
            return
        }
        #expect(consumed == input.count)
        #expect(head.fields.values("X-A") == ["1", "2"])
    }

    /// A large head delivered one byte at a time completes exactly at its last byte.
    @Test func dripFedLargeHeadCompletes() throws {
        var parser = RequestHeadParser(limits: HTTP1Limits(maxHeadBytes: 1 << 20, maxHeaderCount: 10_000))
        let fields = (0..<3_000).map { "X-\($0): value\r\n" }.joined()
        let input = Array("GET / HTTP/1.1\r\nHost: a\r\n\(fields)\r\n".utf8)
        var complete = false
        for end in 1...input.count {
            let result = try input[0..<end].withUnsafeBytes { buf throws(HTTP1ParseError) in try parser.parse(buf) }
            if case .complete = result { complete = true }
        }
        #expect(complete)
    }

    @Test func dateFormat() {
        #expect(HTTPDate.format(epochSeconds: 784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDate.format(epochSeconds: 0) == "Thu, 01 Jan 1970 00:00:00 GMT")
    }
}
