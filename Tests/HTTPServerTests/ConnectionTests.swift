import Foundation
import HTTPServer
import ServerTesting
import Testing

@Suite struct ConnectionTests {
    @Test func keepAliveServesSeveralRequestsOnOneConnection() async throws {
        let server = try Fixtures.server()
        let client = try await server.client()
        for i in 0..<5 {
            try await client.send("GET /echo/n\(i) HTTP/1.1\r\nHost: t\r\n\r\n")
            let response = try await client.readResponse()
            #expect(response.status == 200)
            #expect(response.json["name"] as? String == "n\(i)")
            #expect(response.header("Connection") == nil)
            #expect(response.header("Date") != nil)
        }
        await server.stop()
    }

    @Test func threePipelinedRequestsInOneWriteAnsweredInOrder() async throws {
        let server = try Fixtures.server()
        let client = try await server.client()
        try await client.send(
            "GET /slow?ms=50 HTTP/1.1\r\nHost: t\r\n\r\n" +
            "POST /buffered HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc" +
            "GET /echo/third HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        let first = try await client.readResponse()
        let second = try await client.readResponse()
        let third = try await client.readResponse()
        #expect(first.json["slow"] as? Bool == true)
        #expect(second.json["length"] as? Int == 3)
        #expect(third.json["name"] as? String == "third")
        await server.stop()
    }

    /// Thousands of pipelined requests in one write: all answered, in order, without the
    /// server's stack growing with their number.
    @Test func manyPipelinedRequestsAnsweredInOrder() async throws {
        let server = try Fixtures.server()
        let client = try await server.client()
        let count = 3_000
        try await client.send((0..<count).map { "GET /echo/r\($0) HTTP/1.1\r\nHost: t\r\n\r\n" }.joined())
        for i in 0..<count {
            let response = try await client.readResponse()
            #expect(response.json["name"] as? String == "r\(i)")
            if response.json["name"] as? String != "r\(i)" { break }
        }
        await server.stop()
    }

    @Test func percentDecodedParametersAndQuery() async throws {
        let server = try Fixtures.server()
        let client = try await server.client()
        try await client.send("GET /echo/a%20b?q=x%2Fy HTTP/1.1\r\nHost: t\r\n\r\n")
        let response = try await client.readResponse()
        #expect(response.json["name"] as? String == "a b")
        #expect(response.json["q"] as? String == "x/y")
        // Undecodable escapes reach the handler raw, for its own validation.
        try await client.send("GET /echo/%zz HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try await client.readResponse().json["name"] as? String == "%zz")
        await server.stop()
    }

    @Test func chunkedUploadToBufferedAndStreamedRoutes() async throws {
        let server = try Fixtures.server()
        let client = try await server.client()
        try await client.send("POST /buffered HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n3;x=y\r\nefg\r\n0\r\nT: v\r\n\r\n")
        #expect(try await client.readResponse().json["length"] as? Int == 7)
        // A large chunked upload, streamed with backpressure.
        let payload = [UInt8]((0..<2_000_000).map { UInt8(truncatingIfNeeded: $0 * 7) })
        var wire = Array("POST /streamed HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
        var offset = 0
        while offset < payload.count {
            let n = min(100_000, payload.count - offset)
            wire += Array(String(n, radix: 16).utf8) + [13, 10] + payload[offset..<offset + n] + [13, 10]
            offset += n
        }
        wire += Array("0\r\n\r\n".utf8)
        try await client.send(wire)
        let response = try await client.readResponse()
        #expect(response.json["length"] as? Int == payload.count)
        let sum = payload.reduce(UInt64(0)) { $0 &+ UInt64($1) }
        #expect((response.json["sum"] as? NSNumber)?.uint64Value == sum)
        // And the connection is still usable.
        try await client.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try await client.readResponse().status == 200)
        await server.stop()
    }

    @Test func expectContinueGetsInterimResponse() async throws {
        let server = try Fixtures.server()
        let client = try await server.client()
        try await client.send("POST /buffered HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        let interim = try await client.readResponse(skipInterim: false)
        #expect(interim.status == 100)
        try await client.send("hello")
        #expect(try await client.readResponse().json["length"] as? Int == 5)
        await server.stop()
    }

    @Test func headAnswersWithoutBody() async throws {
        let server = try Fixtures.server()
        let client = try await server.client()
        try await client.send("HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        let head = try await client.readResponse(headRequest: true)
        #expect(head.status == 200)
        #expect(head.header("Content-Length") == "17")
        let get = try await client.readResponse()
        #expect(get.text == #"{"hello":"world"}"#)
        await server.stop()
    }

    @Test func http10ClosesAfterResponse() async throws {
        let server = try Fixtures.server()
        let client = try await server.client()
        try await client.send("GET /hello HTTP/1.0\r\n\r\n")
        let response = try await client.readResponse()
        #expect(response.status == 200)
        #expect(response.header("Connection") == "close")
        #expect(await client.waitForClose())
        await server.stop()
    }

    @Test func writeCompletionReportsSuccessAndFailure() async throws {
        let probe = Fixtures.Probe()
        let server = try Fixtures.server(probe)
        let client = try await server.client()
        try await client.send("GET /tracked HTTP/1.1\r\nHost: t\r\n\r\n")
        _ = try await client.readResponse()
        #expect(await eventually { probe.written.withLock { $0 } == [true] })
        // A client that asks for a large body and vanishes: the write cannot complete.
        let gone = try await server.client()
        try await gone.send("GET /big?n=50000000 HTTP/1.1\r\nHost: t\r\n\r\n")
        try await Task.sleep(for: .milliseconds(50))
        gone.close()
        #expect(await eventually { probe.written.withLock { $0 } == [true, false] })
        await server.stop()
    }

    /// At the cap with every connection busy, accepting pauses until one closes.
    @Test func connectionCapStopsAcceptingWhileAllAreBusy() async throws {
        let probe = Fixtures.Probe()
        let server = try Fixtures.server(probe) { $0.maxConnections = 2 }
        let a = try await server.client()
        let b = try await server.client()
        // Busy until closed or drained: a wait that could end on its own would free its slot (as an
        // idle connection) whenever the whole suite delays this test past it.
        try await a.send("GET /wait?ms=600000 HTTP/1.1\r\nHost: t\r\n\r\n")
        try await b.send("GET /wait?ms=600000 HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(await eventually { probe.started.load(ordering: .relaxed) == 2 })
        let c = try await server.client() // sits in the backlog
        try await c.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        await #expect(throws: (any Error).self) { try await c.readResponse(timeout: .milliseconds(300)) }
        a.close()
        #expect(try await c.readResponse().status == 200)
        #expect(server.server.evictedConnections == 0)
        await server.stop()
    }

    /// At the cap, the oldest idle connection (a silent new one, or an idle keep-alive one) is
    /// closed to make room: one client holding every slot with silent sockets locks nobody out.
    @Test func connectionCapEvictsIdleConnections() async throws {
        let server = try Fixtures.server { $0.maxConnections = 4 }
        var silent: [RawHTTPClient] = []
        for _ in 0..<4 { silent.append(try await server.client()) }
        #expect(await eventually { server.server.openConnections == 4 })
        for i in 0..<8 {
            let c = try await server.client()
            try await c.send("GET /echo/c\(i) HTTP/1.1\r\nHost: t\r\n\r\n")
            let response = try await c.readResponse(timeout: .seconds(3))
            #expect(response.json["name"] as? String == "c\(i)")
            silent.append(c) // now an idle keep-alive connection, evictable in turn
        }
        #expect(server.server.evictedConnections >= 8)
        #expect(await eventually { server.server.openConnections <= 4 })
        var closed = 0
        for c in silent.prefix(4) where await c.waitForClose(timeout: .seconds(2)) { closed += 1 }
        #expect(closed == 4)
        await server.stop()
    }

    /// A burst of connections never runs more than `maxConnections` requests at once: slots are
    /// taken before accept, so the burst cannot overshoot the cap (new connections that have
    /// sent nothing yet may be evicted to make room; those that sent a request keep their slot).
    @Test func connectionCapIsHardUnderABurst() async throws {
        let probe = Fixtures.Probe()
        let server = try Fixtures.server(probe) { $0.maxConnections = 5 }
        let clients = await withTaskGroup(of: RawHTTPClient?.self) { group in
            for _ in 0..<40 {
                group.addTask {
                    guard let c = try? await server.client() else { return nil }
                    try? await c.send("GET /wait?ms=10000 HTTP/1.1\r\nHost: t\r\n\r\n")
                    return c
                }
            }
            var all: [RawHTTPClient] = []
            for await c in group { if let c { all.append(c) } }
            return all
        }
        #expect(await eventually { probe.started.load(ordering: .relaxed) == 5 })
        let until = ContinuousClock.now + .milliseconds(800)
        while ContinuousClock.now < until {
            #expect(probe.started.load(ordering: .relaxed) <= 5)
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(probe.started.load(ordering: .relaxed) == 5)
        for c in clients { c.close() }
        await server.stop()
    }
}
