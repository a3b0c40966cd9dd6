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

    /// Request bodies in a coding other than gzip are 415; the connection stays usable.
    @Test func otherCodedRequestBodiesAre415() async throws {
        let server = try Fixtures.server()
        let client = try await server.client()
        for coding in ["br", "gzip, gzip", "deflate"] {
            try await client.send("POST /buffered HTTP/1.1\r\nHost: t\r\nContent-Encoding: \(coding)\r\nContent-Length: 2\r\n\r\n{}")
            let response = try await client.readResponse()
            #expect(response.status == 415, "\(coding)")
            #expect(response.json["code"] as? Int == 87)
        }
        try await client.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try await client.readResponse().status == 200)
        await server.stop()
    }

    /// gzip request bodies are inflated as they arrive, for buffered and streamed routes alike,
    /// whether framed by length or chunked.
    @Test func gzipRequestBodiesAreInflated() async throws {
        let server = try Fixtures.server()
        let client = try await server.client()
        let json = Array(("{\"pad\":\"" + String(repeating: "ab", count: 1_500) + "\"}").utf8)
        let gz = try #require(Gzip.compress(json))
        for coding in ["gzip", "x-gzip", "identity, gzip"] {
            try await client.send(Array("POST /buffered HTTP/1.1\r\nHost: t\r\nContent-Encoding: \(coding)\r\nContent-Length: \(gz.count)\r\n\r\n".utf8) + gz)
            #expect(try await client.readResponse().json["length"] as? Int == json.count, "\(coding)")
        }
        var upload = [UInt8](repeating: 0, count: 2_000_000)
        var seed: UInt32 = 7  // bytes that compress about 2:1, well inside the ratio bound
        for i in upload.indices {
            seed = seed &* 1_664_525 &+ 1_013_904_223
            upload[i] = UInt8(truncatingIfNeeded: seed >> 24) & 0x0F
        }
        let sum = upload.reduce(UInt64(0)) { $0 &+ UInt64($1) }
        let gzUpload = try #require(Gzip.compress(upload))
        try await client.send(Array("POST /streamed HTTP/1.1\r\nHost: t\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n".utf8))
        for start in stride(from: 0, to: gzUpload.count, by: 100_000) {
            let piece = gzUpload[start..<min(start + 100_000, gzUpload.count)]
            try await client.send(Array((String(piece.count, radix: 16) + "\r\n").utf8) + piece + Array("\r\n".utf8))
        }
        try await client.send("0\r\n\r\n")
        let streamed = try await client.readResponse()
        #expect(streamed.json["length"] as? Int == upload.count)
        #expect(streamed.json["sum"] as? UInt64 == sum)
        await server.stop()
    }

    /// A truncated or corrupt gzip body is 400; a decompression bomb is 413 long before it has
    /// inflated (the handler saw at most the ratio times what was sent).
    @Test func badAndExplosiveGzipBodies() async throws {
        let probe = Fixtures.Probe()
        let server = try Fixtures.server(probe)
        let gz = try #require(Gzip.compress(Array("{\"a\":1}".utf8)))
        for body in [Array(gz.dropLast(4)), Array("not gzip at all".utf8), gz + [0x00]] {
            let client = try await server.client()
            try await client.send(Array("POST /buffered HTTP/1.1\r\nHost: t\r\nContent-Encoding: gzip\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body)
            let response = try await client.readResponse()
            #expect(response.status == 400)
            #expect(response.json["code"] as? Int == 87)
        }
        // 64 KiB of gzip that would inflate to 64 MiB of zeros (1,000:1; the 1 GiB bomb and the
        // server's memory are measured in Benchmarks/leakcheck.py).
        let bomb = try #require(Gzip.compress([UInt8](repeating: 0, count: 64 << 20)))
        let client = try await server.client()
        try await client.send(Array("POST /streamed HTTP/1.1\r\nHost: t\r\nContent-Encoding: gzip\r\nContent-Length: \(bomb.count)\r\n\r\n".utf8) + bomb)
        let response = try await client.readResponse(timeout: .seconds(10))
        #expect(response.status == 413)
        #expect(response.json["code"] as? Int == 87)
        #expect(await eventually { probe.aborted.load(ordering: .relaxed) == 1 })
        await server.stop()
    }

    /// Inflating follows backpressure: a gzip upload to a handler that reads nothing more leaves
    /// at most the streaming buffer and one inflated chunk waiting, not each read's worth
    /// inflated.
    @Test func gzipUploadFollowsBackpressure() async throws {
        let probe = Fixtures.Probe()
        let server = try Fixtures.server(probe)
        var plain = [UInt8](repeating: 0, count: 16 << 20)
        var seed: UInt32 = 3
        for i in plain.indices {
            seed = seed &* 1_664_525 &+ 1_013_904_223
            plain[i] = UInt8(truncatingIfNeeded: seed >> 24) & 0x03  // about 4:1
        }
        let gz = try #require(Gzip.compress(plain))
        let client = try await server.client()
        try await client.send("POST /hold HTTP/1.1\r\nHost: t\r\nContent-Encoding: gzip\r\nContent-Length: \(gz.count)\r\n\r\n")
        let upload = Task { try? await client.send(gz) }
        #expect(await eventually { probe.started.load(ordering: .relaxed) == 1 })
        let stream = try #require(probe.streams.withLock { $0.last?.object } as? BodyStream)
        // Let the server read what it will while the handler holds.
        var most = 0
        for _ in 0..<30 {
            most = max(most, stream.bufferedBytes)
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(most > 0)
        #expect(most <= ServerConfiguration().streamingBodyBuffer + 65_536)
        client.reset()
        _ = await upload.value
        await server.stop()
    }
}
