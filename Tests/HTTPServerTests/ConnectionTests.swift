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

    @Test func connectionCapStopsAcceptingUntilOneCloses() async throws {
        let server = try Fixtures.server { $0.maxConnections = 2 }
        let a = try await server.client()
        let b = try await server.client()
        try await a.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        _ = try await a.readResponse()
        try await b.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        _ = try await b.readResponse()
        let c = try await server.client() // sits in the backlog
        try await c.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        await #expect(throws: (any Error).self) { try await c.readResponse(timeout: .milliseconds(300)) }
        a.close()
        #expect(try await c.readResponse().status == 200)
        await server.stop()
    }
}
