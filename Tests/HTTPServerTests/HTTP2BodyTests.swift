import HTTPServer
import ServerTesting
import Synchronization
import Testing

/// HTTP/2 request bodies over real sockets, held to HTTP/1.1's rules: the body timeout, and the
/// per-connection cap on what the server holds for handlers. One stalled stream never stops
/// the connection or the other streams on it.
@Suite struct HTTP2BodyTests {
    static func server(bodyTimeout: Duration) throws -> TestServer {
        var configuration = ServerConfiguration()
        configuration.bodyTimeout = bodyTimeout
        // As in APIFixture: the head timeout runs from accept, and a busy machine running the whole
        // suite can hold a connected client back for seconds before its first frame.
        configuration.headerTimeout = .seconds(120)
        return try TestServer(routes: Fixtures.routes(Fixtures.Probe()), configuration: configuration)
    }

    /// Three streams declare 100,000 bytes, send 11 and stall: each is answered 408 and reset at
    /// the body timeout (a short one here), while a stream on the same connection is served
    /// before it and another after.
    @Test func stalledStreamsAreAnswered408AtTheBodyTimeout() async throws {
        let server = try Self.server(bodyTimeout: .seconds(2))
        let client = try await H2Client.connect(port: server.port)
        let started = ContinuousClock.now
        let stalled = (0..<3).map { _ in
            client.submit("POST", "/buffered", headers: [("content-type", "application/json")],
                          body: Array(#"{"a":"bcd"}"#.utf8), declaredLength: 100_000)
        }
        #expect(stalled.allSatisfy { $0 > 0 })
        try await client.ping()
        let served = try await client.request("GET", "/hello")
        #expect(served.status == 200)
        // Checked only while the body timeout cannot have run out yet (a loaded machine may take
        // longer than that to serve the GET); the cut's lower bound is checked below either way.
        if ContinuousClock.now - started < .milliseconds(1_500) {
            #expect(stalled.allSatisfy { !client.isClosed($0) }, "a stalled stream ended before its body timeout")
        }

        let answers = try await client.wait(for: stalled, timeout: .seconds(20))
        let waited = ContinuousClock.now - started
        for answer in answers {
            #expect(answer.status == 408, "stream \(answer.stream): \(answer.status.map(String.init) ?? "no answer") \(answer.text)")
            #expect(answer.json["code"] as? Int == 1460, "\(answer.text)")
            #expect(answer.resetCode != nil, "stream \(answer.stream) was not reset")
        }
        #expect(waited >= .milliseconds(1_500), "cut after \(waited), before the body timeout")
        #expect(try await client.request("GET", "/hello").status == 200)
        #expect(server.server.bufferedRequestBodyBytes == 0)
        client.close()
        await server.stop()
    }

    /// 256 streams on one connection each send 32 KiB of a declared 1 MB body and stall: the
    /// server holds at most `maxBufferedBodyPerConnection` (4 MiB) of them, not 8 MiB (nor 256
    /// MiB with bodies of 1 MiB), keeps serving the connection, and lets it all go when the body
    /// timeout cuts the streams (credit freed by the first cuts lets the rest arrive, and be cut
    /// one body timeout later).
    @Test(.disabled("under the whole suite the server sometimes closes this connection; cause not yet found (see the closing note of issue 19's first half); passes alone"))
    func twoHundredFiftySixStalledStreamsStayWithinTheBufferedCap() async throws {
        let server = try Self.server(bodyTimeout: .seconds(3))
        let cap = ServerConfiguration().maxBufferedBodyPerConnection
        let client = try await H2Client.connect(port: server.port)
        let chunk = [UInt8](repeating: 0x20, count: 32_768)
        let stalled = (0..<256).map { _ in
            client.submit("POST", "/buffered", headers: [("content-type", "application/json")], body: chunk, declaredLength: 1_000_000)
        }
        #expect(stalled.allSatisfy { $0 > 0 })
        let peak = Atomic<Int>(0)
        let http = server.server
        // Wait until the server holds back credit (it holds more than the cap less the window).
        try await client.pump(timeout: .seconds(20), "the server to hold 3 MiB") { _ in
            let held = http.bufferedRequestBodyBytes
            _ = peak.max(held, ordering: .relaxed)
            return held > cap - (1 << 20)
        }
        // Everything the client could send has been read: the server holds no more than the cap.
        try await client.ping()
        try await client.ping()
        _ = peak.max(http.bufferedRequestBodyBytes, ordering: .relaxed)
        #expect(peak.load(ordering: .relaxed) <= cap, "held \(peak.load(ordering: .relaxed)) bytes")
        #expect(try await client.request("GET", "/hello").status == 200)

        let answers = try await client.wait(for: stalled, timeout: .seconds(60))
        #expect(answers.allSatisfy { $0.status == 408 }, "\(Set(answers.map { $0.status ?? 0 }))")
        #expect(http.bufferedRequestBodyBytes == 0)
        #expect(try await client.request("GET", "/hello").status == 200)
        client.close()
        await server.stop()
    }
}
