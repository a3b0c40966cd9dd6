import HTTPServer
import ServerTesting
import Testing

/// What a hostile or broken client must not be able to do: each test failed before its fix.
@Suite struct HardeningTests {
    /// Valid Accept-Encoding lists still negotiate gzip after the list parser became strict.
    @Test(arguments: [
        ("gzip", true), ("GZIP;q=0.5", true), ("br, gzip;q=0.001", true), ("gzip;q=0", false),
        ("*", true), ("*;q=0", false), ("identity", false), (" , gzip ,", true), ("br;q=1.000, *;q=0.2", true),
    ])
    func acceptEncodingNegotiation(_ value: String, _ gzip: Bool) async throws {
        let server = try Fixtures.server()
        let client = try await server.client()
        try await client.send("GET /json HTTP/1.1\r\nHost: t\r\nAccept-Encoding: \(value)\r\n\r\n")
        let response = try await client.readResponse()
        #expect(response.status == 200)
        #expect((response.header("Content-Encoding") == "gzip") == gzip)
        await server.stop()
    }

    /// A malformed Accept-Encoding only fails to negotiate an optional coding: the request is
    /// served with the identity coding on HTTP/1.1 and HTTP/2 (issue 23, item 2), as nginx and
    /// Apache do, and the connection stays usable.
    @Test(arguments: ["gzip;q=", "gzip;q=abc", ";", ";;", "gzip,;", " ; ", "gzip;q=2", "gzip;q=\"0.5"])
    func malformedAcceptEncodingIsIgnored(_ value: String) async throws {
        let server = try Fixtures.server()
        let client = try await server.client()
        for _ in 0..<2 {
            try await client.send("GET /json HTTP/1.1\r\nHost: t\r\nAccept-Encoding: \(value)\r\n\r\n")
            let response = try await client.readResponse()
            #expect(response.status == 200, "'\(value)': \(response.status) \(response.text)")
            #expect(response.header("Content-Encoding") == nil)
            #expect(response.json["pad"] != nil)
        }
        // (HTTP/2 itself forbids a value that begins or ends with a space: nghttp2 resets such a stream.)
        if value.trimmingCharacters(in: .whitespaces) == value {
            let h2 = try await H2Client.connect(port: server.port)
            let r = try #require(try await h2.wait(for: [h2.submit("GET", "/json", headers: [("accept-encoding", value)])]).first)
            #expect(r.status == 200, "h2 '\(value)': \(String(describing: r.status))")
            #expect(!r.headers.contains { $0.0 == "content-encoding" })
            h2.close()
        }
        client.close()
        await server.stop()
    }

    /// An HTTP/1.0 client asking for keep-alive is told so, and its connection serves again.
    @Test func http10KeepAliveIsAnnounced() async throws {
        let server = try Fixtures.server()
        let client = try await server.client()
        for i in 0..<3 {
            try await client.send("GET /echo/k\(i) HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            let response = try await client.readResponse()
            #expect(response.json["name"] as? String == "k\(i)")
            #expect(response.header("Connection") == "keep-alive")
        }
        await server.stop()
    }

    /// The head timeout runs from accept: a client that connects and sends nothing is closed
    /// after `headerTimeout`, not after the (much longer) idle timeout.
    @Test func silentNewConnectionClosedAtTheHeadTimeout() async throws {
        let server = try Fixtures.server {
            $0.headerTimeout = .milliseconds(200)
            $0.idleTimeout = .seconds(60)
        }
        let client = try await server.client()
        #expect(await client.waitForClose(timeout: .seconds(3)))
        await server.stop()
    }

    /// A body that trickles below the minimum data rate is cut with 408 after the grace period,
    /// although each byte comes well within the body timeout.
    @Test func tricklingBodyIsCutByTheMinimumRate() async throws {
        let probe = Fixtures.Probe()
        let server = try Fixtures.server(probe) {
            $0.bodyTimeout = .seconds(30)
            $0.minBodyDataRate = 1_000
            $0.minBodyDataRateGrace = .milliseconds(300)
        }
        let client = try await server.client()
        try await client.send("POST /streamed HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n")
        // One byte every 100 ms for 1.5 s: each within the body timeout, far below the rate.
        for _ in 0..<15 {
            guard (try? await client.send("x")) != nil else { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let response = try await client.readResponse(timeout: .seconds(5))
        #expect(response.status == 408)
        #expect(response.json["code"] as? Int == 1460)
        #expect(await eventually { probe.aborted.load(ordering: .relaxed) == 1 })
        // A body sent at speed is not affected.
        let fast = try await server.client()
        let body = [UInt8](repeating: 7, count: 200_000)
        let answer = try await fast.request("POST", "/streamed", body: body)
        #expect(answer.json["length"] as? Int == body.count)
        await server.stop()
    }

    /// A connection paused for backpressure (the handler reads nothing more) still notices that
    /// its client finished sending early (FIN) or reset: the handler is cancelled at once, not
    /// when it would have finished.
    @Test(arguments: [false, true])
    func pausedUploadNoticesTheClientLeaving(reset: Bool) async throws {
        let probe = Fixtures.Probe()
        let server = try Fixtures.server(probe)
        let client = try await server.client()
        let declared = 8 << 20
        try await client.send("POST /hold HTTP/1.1\r\nHost: t\r\nContent-Length: \(declared)\r\n\r\n")
        // More than the streaming buffer (so reading pauses), far less than declared.
        try await client.send([UInt8](repeating: 1, count: 600_000))
        #expect(await eventually { probe.started.load(ordering: .relaxed) == 1 })
        try await Task.sleep(for: .milliseconds(100))
        if reset { client.reset() } else { client.shutdownWrite() }
        #expect(await eventually(timeout: .seconds(3)) { probe.cancelled.load(ordering: .relaxed) == 1 })
        #expect(await eventually { server.server.openConnections == 0 })
        client.close()
        await server.stop()
    }

    /// While paused for backpressure the body timeout still runs: a handler that takes nothing
    /// more for `bodyTimeout` does not pin the connection.
    @Test func pausedUploadStillTimesOut() async throws {
        let probe = Fixtures.Probe()
        let server = try Fixtures.server(probe) { $0.bodyTimeout = .milliseconds(400) }
        let client = try await server.client()
        let size = 4 << 20
        try await client.send("POST /hold HTTP/1.1\r\nHost: t\r\nContent-Length: \(size)\r\n\r\n")
        let upload = Task { try? await client.send([UInt8](repeating: 1, count: size)) }
        #expect(await eventually { probe.started.load(ordering: .relaxed) == 1 })
        // Well under the handler's own 10 s: only the body timeout can cancel it this soon.
        #expect(await eventually(timeout: .seconds(8)) { probe.cancelled.load(ordering: .relaxed) == 1 })
        _ = await upload.value  // the send fails once the server has closed
        #expect(await client.waitForClose(timeout: .seconds(3)))
        await server.stop()
    }

    /// A request refused from its head gets no `100 Continue`: its answer comes first, and the
    /// connection closes since the body will not follow.
    @Test func refusedRequestGetsNoContinue() async throws {
        let server = try Fixtures.server()
        let client = try await server.client()
        try await client.send("POST /refuse HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n")
        let first = try await client.readResponse(skipInterim: false)
        #expect(first.status == 413)
        #expect(first.header("Connection") == "close")
        // A streamed route that reads its body still gets one.
        let reader = try await server.client()
        try await reader.send("POST /streamed HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        #expect(try await reader.readResponse(skipInterim: false).status == 100)
        try await reader.send("hello")
        #expect(try await reader.readResponse().json["length"] as? Int == 5)
        await server.stop()
    }

    /// A streamed exchange is freed once it ends: its body stream does not outlive it, whether
    /// the handler read the body, refused it from the head, or the request was pipelined.
    @Test func streamedExchangesAreFreed() async throws {
        let probe = Fixtures.Probe()
        let server = try Fixtures.server(probe)
        let client = try await server.client()
        for _ in 0..<20 {
            #expect(try await client.request("POST", "/streamed", body: [1, 2, 3]).status == 200)
            #expect(try await client.request("POST", "/refuse", body: []).status == 413)
        }
        try await client.send(String(repeating: "POST /refuse HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", count: 20))
        for _ in 0..<20 { #expect(try await client.readResponse().status == 413) }
        #expect(probe.streams.withLock { $0.count } == 60)
        client.close()
        #expect(await eventually { server.server.openConnections == 0 })
        #expect(await eventually { probe.liveStreams == 0 })
        await server.stop()
    }

    /// A client that pipelines requests and never reads an answer holds one answer and a bounded
    /// input, is dropped at the write-stall timeout, and other clients are served meanwhile.
    @Test func pipelinedRequestsNeverReadAreBounded() async throws {
        let server = try Fixtures.server { $0.writeTimeout = .milliseconds(500) }
        let flooder = try await server.client()
        let request = "GET /json?n=200000 HTTP/1.1\r\nHost: t\r\n\r\n"
        // Sends until the server stops reading (the send blocks), at most 20,000 requests.
        let flood = Task { try? await flooder.send(String(repeating: request, count: 20_000)) }
        #expect(await eventually { server.server.openConnections == 1 })
        let other = try await server.client()
        for i in 0..<5 {
            let answer = try await other.request("GET", "/echo/o\(i)", timeout: .seconds(2))
            #expect(answer.json["name"] as? String == "o\(i)")
        }
        other.close()
        #expect(await eventually(timeout: .seconds(5)) { server.server.openConnections == 0 })
        flooder.reset()
        _ = await flood.value
        await server.stop()
    }

    /// A client that half-closes after a complete request still gets its answer: a handler that
    /// works on what it received is not cancelled (only one that merely waits would be).
    @Test func halfCloseAfterACompleteRequestLetsTheHandlerFinish() async throws {
        let probe = Fixtures.Probe()
        let server = try Fixtures.server(probe)
        let client = try await server.client()
        try await client.send("POST /work?ms=200 HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
        #expect(await eventually { probe.started.load(ordering: .relaxed) == 1 })
        client.shutdownWrite()
        let response = try await client.readResponse()
        #expect(response.status == 200)
        #expect(response.json["length"] as? Int == 5)
        #expect(probe.cancelled.load(ordering: .relaxed) == 0)
        await server.stop()
    }

    /// A HEAD request refused before its head is understood gets its status and fields, never a
    /// body (RFC 9110 §9.3.2).
    @Test(arguments: [
        "HEAD /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "HEAD /hello HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n",
        "HEAD /hello HTTP/2.0\r\nHost: a\r\n\r\n",
        "HEAD /\(String(repeating: "x", count: 9_000)) HTTP/1.1\r\nHost: a\r\n\r\n",
    ])
    func refusedHeadRequestsGetNoBody(_ request: String) async throws {
        let server = try Fixtures.server()
        let client = try await server.client()
        try await client.send(request)
        let response = try await client.readResponse(headRequest: true)
        #expect(response.status >= 400)
        #expect(response.header("Content-Length") != nil)
        #expect(await client.readToClose().isEmpty)
        await server.stop()
    }

    /// A complete chunked body sent at once, ending in trailers or a last-chunk extension, then
    /// a FIN that arrives while reading is paused for a slow handler: the whole body is still
    /// delivered and answered.
    @Test(arguments: ["0\r\n\r\n", "0\r\nX-Trailer: 1\r\n\r\n", "0;ext=1\r\n\r\n"])
    func finishedChunkedBodyThenFINIsAnswered(_ ending: String) async throws {
        let server = try Fixtures.server()
        let client = try await server.client()
        var request = Array("POST /slowread HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
        let chunk = [UInt8](repeating: 0x61, count: 65_536)
        for _ in 0..<32 { request += Array("10000\r\n".utf8) + chunk + Array("\r\n".utf8) }
        request += Array(ending.utf8)
        try await client.send(request)
        client.shutdownWrite()
        let response = try await client.readResponse(timeout: .seconds(20))
        #expect(response.json["length"] as? Int == 32 * 65_536)
        await server.stop()
    }

    /// When a burst of accepts filled every slot, the listener paused before those connections
    /// were idle; once they are, a new client makes room by evicting one, without waiting for a
    /// connection to close.
    @Test func pausedAtTheCapResumesWhenConnectionsTurnIdle() async throws {
        let server = try Fixtures.server { $0.maxConnections = 4 }
        let clients = try await withThrowingTaskGroup(of: RawHTTPClient.self) { group in
            for i in 0..<4 {
                group.addTask {
                    let c = try await server.client()
                    #expect(try await c.request("GET", "/echo/b\(i)").status == 200)
                    return c
                }
            }
            var all: [RawHTTPClient] = []
            for try await c in group { all.append(c) }
            return all
        }
        let late = try await server.client()
        try await late.send("GET /echo/late HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try await late.readResponse(timeout: .seconds(5)).json["name"] as? String == "late")
        for c in clients { c.close() }
        await server.stop()
    }
}
