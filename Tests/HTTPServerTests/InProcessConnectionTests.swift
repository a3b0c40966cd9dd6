import HTTPServer
import Testing

/// The HTTP/1.1 connection without sockets: bytes in, bytes out, timers fired by hand.
@Suite struct InProcessConnectionTests {
    static func connection() -> InProcessHTTP1Connection {
        InProcessHTTP1Connection(router: Router(Fixtures.routes(Fixtures.Probe())))
    }

    /// Answers with the Date and request-id lines removed (they differ from run to run).
    static func stable(_ output: [UInt8]) -> String {
        String(decoding: output, as: UTF8.self).split(separator: "\r\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("Date:") && !$0.hasPrefix("X-Request-Id:") }.joined(separator: "\r\n")
    }

    static let pipelined = "GET /echo/a HTTP/1.1\r\nHost: t\r\n\r\n"
        + "POST /buffered HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        + "HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n"
        + "GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n"
        + "GET /echo/b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"

    /// Fed whole, byte by byte, or split anywhere, pipelined requests give the same answers.
    @Test func dripFedPipelineAnswersAlike() {
        let whole = Self.connection()
        whole.feed(Array(Self.pipelined.utf8))
        whole.settle()
        let expected = Self.stable(whole.output)
        #expect(expected.components(separatedBy: "HTTP/1.1 ").count - 1 == 5)
        #expect(whole.isClosed)
        let bytes = Array(Self.pipelined.utf8)
        let drip = Self.connection()
        for b in bytes { drip.feed([b]) }
        drip.settle()
        #expect(Self.stable(drip.output) == expected)
        for split in stride(from: 1, to: bytes.count, by: 7) {
            let c = Self.connection()
            c.feed(Array(bytes[..<split]))
            c.feed(Array(bytes[split...]))
            c.settle()
            #expect(Self.stable(c.output) == expected, "split at \(split)")
        }
    }

    /// The head timer: a silent connection closes without a word, a partial head gets 408.
    @Test func headTimer() {
        let silent = Self.connection()
        silent.fireTimer()
        #expect(silent.isClosed)
        #expect(silent.output.isEmpty)
        let partial = Self.connection()
        partial.feed(Array("GET /hello HTTP/1.1\r\nHo".utf8))
        partial.fireTimer()
        #expect(String(decoding: partial.output, as: UTF8.self).hasPrefix("HTTP/1.1 408 "))
        #expect(partial.isClosed)
    }

    /// After an answer the idle timer closes a keep-alive connection.
    @Test func idleTimer() {
        let c = Self.connection()
        c.feed(Array("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n".utf8))
        c.settle()
        #expect(!c.isClosed)
        c.fireTimer()
        #expect(c.isClosed)
    }

    /// EOF in the middle of a body closes; EOF after a complete request still gets its answer.
    @Test func endOfInput() {
        let cut = Self.connection()
        cut.feed(Array("POST /buffered HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc".utf8))
        cut.finishInput()
        #expect(cut.isClosed)
        #expect(cut.output.isEmpty)
        let half = Self.connection()
        half.feed(Array("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n".utf8))
        half.finishInput()
        half.settle()
        #expect(String(decoding: half.output, as: UTF8.self).hasPrefix("HTTP/1.1 200 "))
    }
}
