import HTTPServer
import HTTPWire
import ServerTesting
import Testing

@Suite struct CompressionTests {
    @Test func gzipRoundTrip() throws {
        let text = Array(String(repeating: "peerdist ", count: 5_000).utf8)
        let compressed = try #require(Gzip.compress(text))
        #expect(compressed.count < text.count / 10)
        #expect(Array(compressed.prefix(2)) == [0x1F, 0x8B]) // the gzip magic
        #expect(Gzip.decompress(compressed) == text)
        #expect(Gzip.decompress(Array(compressed.dropLast(10))) == nil)
        #expect(Gzip.decompress(Array("not gzip".utf8)) == nil)
    }

    @Test func jsonIsCompressedWhenTheClientAcceptsGzip() async throws {
        let server = try Fixtures.server()
        let client = try await server.client()
        try await client.send("GET /json?n=6000 HTTP/1.1\r\nHost: t\r\nAccept-Encoding: br;q=1, gzip;q=0.5\r\n\r\n")
        let gz = try await client.readResponse()
        #expect(gz.header("Content-Encoding") == "gzip")
        #expect(gz.header("Vary") == "Accept-Encoding")
        let plain = try #require(Gzip.decompress(gz.body))
        #expect(plain.count > 6_000)
        #expect(gz.body.count < plain.count)

        // Refused (q=0), absent, or a small body: sent as is.
        try await client.send("GET /json?n=6000 HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip;q=0, *\r\n\r\n")
        let refused = try await client.readResponse()
        #expect(refused.header("Content-Encoding") == nil)
        #expect(refused.header("Vary") == "Accept-Encoding")
        #expect(refused.body == plain)
        try await client.send("GET /json?n=6000 HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try await client.readResponse().header("Content-Encoding") == nil)
        try await client.send("GET /hello HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n")
        let small = try await client.readResponse()
        #expect(small.header("Content-Encoding") == nil)
        #expect(small.header("Vary") == nil)

        // HEAD gets the headers GET would get.
        try await client.send("HEAD /json?n=6000 HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n")
        let head = try await client.readResponse(headRequest: true)
        #expect(head.header("Content-Encoding") == "gzip")
        #expect(head.header("Content-Length") == String(gz.body.count))
        await server.stop()
    }

    @Test func encodedRequestBodiesAre415() async throws {
        let server = try Fixtures.server()
        let client = try await server.client()
        let body = try #require(Gzip.compress(Array("{}".utf8)))
        try await client.send(Array("POST /buffered HTTP/1.1\r\nHost: t\r\nContent-Encoding: gzip\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body)
        let response = try await client.readResponse()
        #expect(response.status == 415)
        #expect(response.json["code"] as? Int == 87)
        try await client.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try await client.readResponse().status == 200)
        await server.stop()
    }
}
