import HTTPWire
import ServerTesting
import Testing

/// Every parser case runs whole, byte by byte and split at every index, and must agree.
@Suite struct RequestParsingTests {
    typealias Case = HeadParserCase

    static let cases = HeadParserCase.all

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
