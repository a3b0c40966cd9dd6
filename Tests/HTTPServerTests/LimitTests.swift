import HTTPServer
import ServerTesting
import Testing

@Suite struct LimitTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let request: String
        let status: Int
        let code: Int
        var closes = true
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "head too large", request: "GET /hello HTTP/1.1\r\nHost: t\r\nX: \(String(repeating: "a", count: 3_000))\r\n\r\n", status: 431, code: 87),
        Case(name: "too many fields", request: "GET /hello HTTP/1.1\r\nHost: t\r\n" + (0..<20).map { "X-\($0): v\r\n" }.joined() + "\r\n", status: 431, code: 87),
        Case(name: "target too long", request: "GET /\(String(repeating: "a", count: 600)) HTTP/1.1\r\nHost: t\r\n\r\n", status: 414, code: 87),
        Case(name: "body too large (declared)", request: "POST /buffered HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n", status: 413, code: 87),
        Case(name: "body too large (chunked)", request: "POST /buffered HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n\(String(repeating: "z", count: 2048))\r\n800\r\n\(String(repeating: "z", count: 2048))\r\n1\r\nz\r\n0\r\n\r\n", status: 413, code: 87),
        Case(name: "length required", request: "POST /streamed HTTP/1.1\r\nHost: t\r\n\r\n", status: 411, code: 87, closes: false),
        Case(name: "unknown transfer coding", request: "POST /buffered HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: br\r\n\r\n", status: 501, code: 50),
        Case(name: "bad version", request: "GET /hello HTTP/3.0\r\nHost: t\r\n\r\n", status: 505, code: 50),
        Case(name: "CL with TE", request: "POST /buffered HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 400, code: 87),
        Case(name: "duplicate differing CL", request: "POST /buffered HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", status: 400, code: 87),
        Case(name: "obs-fold", request: "GET /hello HTTP/1.1\r\nHost: t\r\nX: a\r\n  b\r\n\r\n", status: 400, code: 87),
        Case(name: "bare CR", request: "GET /hello HTTP/1.1\r\nHost: t\r\nX: a\rb\r\n\r\n", status: 400, code: 87),
        Case(name: "space before colon", request: "GET /hello HTTP/1.1\r\nHost : t\r\n\r\n", status: 400, code: 87),
        Case(name: "malformed chunk size", request: "POST /buffered HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", status: 400, code: 87),
        Case(name: "missing host", request: "GET /hello HTTP/1.1\r\n\r\n", status: 400, code: 87),
        Case(name: "unknown expectation", request: "GET /hello HTTP/1.1\r\nHost: t\r\nExpect: 200-ok\r\n\r\n", status: 417, code: 87),
        Case(name: "unknown route", request: "GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n", status: 404, code: 87, closes: false),
        Case(name: "method not allowed", request: "POST /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", status: 405, code: 50, closes: false),
        Case(name: "only empty lines", request: String(repeating: "\r\n", count: 1_500), status: 431, code: 87),
        Case(name: "unknown method", request: "BREW /hello HTTP/1.1\r\nHost: t\r\n\r\n", status: 501, code: 50, closes: false),
        Case(name: "standard method no route has", request: "TRACE /hello HTTP/1.1\r\nHost: t\r\n\r\n", status: 405, code: 50, closes: false),
        Case(name: "target and head too long", request: "GET /\(String(repeating: "a", count: 3_000)) HTTP/1.1\r\nHost: t\r\n\r\n", status: 414, code: 87),
        Case(name: "bare LF line ends", request: "GET /hello HTTP/1.1\nHost: t\n\n", status: 400, code: 87),
        Case(name: "invalid Host", request: "GET /hello HTTP/1.1\r\nHost: bad host/x\r\n\r\n", status: 400, code: 87),
        Case(name: "malformed absolute-form", request: "GET http://[::1/hello HTTP/1.1\r\nHost: t\r\n\r\n", status: 400, code: 87),
        Case(name: "target without a leading slash", request: "GET hello HTTP/1.1\r\nHost: t\r\n\r\n", status: 400, code: 87),
        Case(name: "asterisk-form for GET", request: "GET * HTTP/1.1\r\nHost: t\r\n\r\n", status: 400, code: 87),
        Case(name: "TLS ClientHello", request: "\u{16}\u{03}\u{01}\u{02}\u{00}\u{01}\u{00}\u{01}\u{fc}\u{03}\u{03}", status: 400, code: 87),
        Case(name: "malformed Connection", request: "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close;\"\r\n\r\n", status: 400, code: 87),
        Case(name: "Expect with a parameter", request: "GET /hello HTTP/1.1\r\nHost: t\r\nExpect: 100-continue;x=1\r\n\r\n", status: 417, code: 87),
        Case(name: "chunked with a parameter", request: "POST /buffered HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked;x=1\r\n\r\n0\r\n\r\n", status: 400, code: 87),
    ]

    static func limitedServer() throws -> TestServer {
        try Fixtures.server {
            $0.parserLimits = HTTPWireLimits(maxHeadBytes: 2_048, maxHeaderCount: 10, maxTargetLength: 512)
            $0.maxBodySize = 4_096
        }
    }

    /// Each malformed or over-limit request gets its status as problem+json, the connection
    /// closes when the stream can't be trusted, and the next client is served normally.
    @Test(arguments: cases)
    func answersWithProblemAndStaysHealthy(_ c: Case) async throws {
        let server = try Self.limitedServer()
        let client = try await server.client()
        try await client.send(c.request)
        let response = try await client.readResponse()
        #expect(response.status == c.status)
        #expect(response.header("Content-Type") == "application/problem+json")
        #expect(response.json["code"] as? Int == c.code)
        #expect(response.json["status"] as? Int == c.status)
        #expect(response.json["error"] is String)
        #expect(response.json["title"] is String)
        if c.status == 405 { #expect(response.header("Allow") == "GET, HEAD") }
        if c.closes {
            #expect(response.header("Connection") == "close")
            #expect(await client.waitForClose())
        } else {
            try await client.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try await client.readResponse().status == 200)
        }
        let next = try await server.client()
        try await next.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try await next.readResponse().status == 200)
        await server.stop()
    }

    @Test func slowlorisHeadTimesOutWith408() async throws {
        let server = try Fixtures.server {
            $0.headerTimeout = .milliseconds(300)
            $0.closeLinger = .milliseconds(100)
        }
        // The head timeout runs from accept: connect and send in one step, so that a busy test
        // process does not let it run out before the partial head is even sent.
        let client = try await RawHTTPClient.connect(port: server.port, sending: Array("GET /hello HTTP/1.1\r\nHo".utf8))
        let response = try await client.readResponse(timeout: .seconds(5))
        #expect(response.status == 408)
        #expect(response.json["code"] as? Int == 1460)
        #expect(await client.waitForClose())
        // Dripping bytes does not extend the head deadline: a drip planned to last 6 s (far past
        // the 300 ms deadline, each byte well within it) is cut off.
        let drip = try await server.client()
        await #expect(throws: (any Error).self) {
            try await drip.drip("GET /hello HTTP/1.1\r\nHost: t\r\nX-Long: " + String(repeating: "a", count: 260), pause: .milliseconds(20))
        }
        await server.stop()
    }

    @Test func idleKeepAliveConnectionIsClosed() async throws {
        let server = try Fixtures.server { $0.idleTimeout = .milliseconds(300) }
        // Connect and send in one step: a busy test process must not let the idle timer run
        // out before the request is even sent.
        let client = try await RawHTTPClient.connect(port: server.port, sending: Array("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n".utf8))
        #expect(try await client.readResponse().status == 200)
        #expect(await client.waitForClose(timeout: .seconds(3)))
        await server.stop()
    }

    /// A client that stops reading a large response is dropped after the write-stall timeout;
    /// one that reads slowly is not.
    @Test func stalledReaderIsDroppedSlowReaderIsNot() async throws {
        let probe = Fixtures.Probe()
        let server = try Fixtures.server(probe) { $0.writeTimeout = .milliseconds(300) }
        let stalled = try await server.client()
        try await stalled.send("GET /big?n=20000000 HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(await eventually(timeout: .seconds(5)) { probe.written.withLock { $0 } == [false] })

        let slow = try await server.client()
        try await slow.send("GET /big?n=3000000 HTTP/1.1\r\nHost: t\r\n\r\n")
        try await Task.sleep(for: .milliseconds(200))
        let response = try await slow.readResponse(timeout: .seconds(10))
        #expect(response.body.count == 3_000_000)
        #expect(await eventually { probe.written.withLock { $0 } == [false, true] })
        await server.stop()
    }

    /// A request answered before its body was read (here a 404) still has a deadline for the
    /// rest of the body: a client that goes silent does not hold the connection forever.
    @Test func silenceAfterAnEarlyAnswerTimesOut() async throws {
        let server = try Fixtures.server { $0.bodyTimeout = .milliseconds(200) }
        let client = try await server.client()
        try await client.send("POST /nowhere HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        #expect(try await client.readResponse().status == 404)
        #expect(await client.waitForClose(timeout: .seconds(3)))
        #expect(await eventually { server.server.openConnections == 0 })
        await server.stop()
    }

    /// A client that half-closes after a complete request still gets the whole answer.
    @Test func halfClosedClientGetsItsAnswer() async throws {
        let server = try Fixtures.server()
        let client = try await server.client()
        try await client.send("GET /big?n=2000000 HTTP/1.1\r\nHost: t\r\n\r\n")
        client.shutdownWrite()
        let response = try await client.readResponse(timeout: .seconds(10))
        #expect(response.body.count == 2_000_000)
        await server.stop()
    }

    @Test func stalledBodyTimesOutWith408() async throws {
        let server = try Fixtures.server { $0.bodyTimeout = .milliseconds(150) }
        let client = try await server.client()
        try await client.send("POST /buffered HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        let response = try await client.readResponse(timeout: .seconds(3))
        #expect(response.status == 408)
        #expect(await client.waitForClose())
        await server.stop()
    }

    @Test func clientVanishingMidBodyAbortsTheHandler() async throws {
        let probe = Fixtures.Probe()
        let server = try Fixtures.server(probe)
        for _ in 0..<20 {
            let client = try await server.client()
            try await client.send("POST /streamed HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n" + String(repeating: "x", count: 70_000))
            client.close()
        }
        #expect(await eventually { probe.aborted.load(ordering: .relaxed) == 20 })
        let next = try await server.client()
        try await next.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try await next.readResponse().status == 200)
        #expect(await eventually { server.server.openConnections == 1 })
        await server.stop()
    }

    @Test func clientLeavingALongPollCancelsItsHandler() async throws {
        let probe = Fixtures.Probe()
        let server = try Fixtures.server(probe)
        let client = try await server.client()
        try await client.send("GET /wait?ms=30000 HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(await eventually { probe.started.load(ordering: .relaxed) == 1 })
        client.close()
        #expect(await eventually { probe.cancelled.load(ordering: .relaxed) == 1 })
        await server.stop()
    }

    /// Random garbage never crashes the server, and it keeps answering.
    @Test func fuzzedGarbageNeverBreaksTheServer() async throws {
        let server = try Self.limitedServer()
        var rng = SystemRandomNumberGenerator()
        let seeds = ["GET /hello HTTP/1.1\r\nHost: t\r\n\r\n",
                     "POST /buffered HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
                     "POST /streamed HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nabcd"]
        for i in 0..<150 {
            var bytes = Array(seeds[i % seeds.count].utf8)
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let at = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: bytes[at] = UInt8.random(in: 0...255, using: &rng)
                case 1: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: at)
                default: bytes.remove(at: at)
                }
            }
            let client = try await server.client()
            try? await client.send(bytes)
            client.shutdownWrite()
            _ = await client.waitForClose(timeout: .seconds(2))
        }
        let next = try await server.client()
        try await next.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try await next.readResponse().status == 200)
        await server.stop()
    }
}
