import HTTPServer
import ServerTesting
import Testing

@Suite struct DrainTests {
    @Test func drainLetsRequestsInFlightFinishAndAnswersLongPolls() async throws {
        let probe = Fixtures.Probe()
        let server = try Fixtures.server(probe)
        let slow = try await server.client()
        try await slow.send("GET /slow?ms=400 HTTP/1.1\r\nHost: t\r\n\r\n")
        let poll = try await server.client()
        try await poll.send("GET /wait?ms=30000 HTTP/1.1\r\nHost: t\r\n\r\n")
        let idle = try await server.client()
        try await idle.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        _ = try await idle.readResponse()
        #expect(await eventually { probe.started.load(ordering: .relaxed) == 2 })

        let started = ContinuousClock.now
        async let drained: Void = server.stop()
        let pollAnswer = try await poll.readResponse()
        #expect(pollAnswer.status == 200)
        #expect(pollAnswer.json["interrupted"] as? Bool == true)
        #expect(pollAnswer.header("Connection") == "close")
        let slowAnswer = try await slow.readResponse()
        #expect(slowAnswer.status == 200)
        #expect(slowAnswer.json["slow"] as? Bool == true)
        #expect(await idle.waitForClose())
        await drained
        // Behaviour, not speed: the drain did not wait for the 30 s long-poll to run out.
        #expect(ContinuousClock.now - started < .seconds(25))
        #expect(server.server.openConnections == 0)
        await #expect(throws: (any Error).self) { _ = try await server.client() }
    }

    @Test func drainTimeoutClosesWhatIsLeft() async throws {
        let probe = Fixtures.Probe()
        let server = try Fixtures.server(probe) { $0.drainTimeout = .milliseconds(200) }
        let slow = try await server.client()
        try await slow.send("GET /slow?ms=30000 HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(await eventually { probe.started.load(ordering: .relaxed) == 1 })
        let started = ContinuousClock.now
        await server.stop()
        // Behaviour, not speed: the drain ended long before the request in flight would have.
        #expect(ContinuousClock.now - started < .seconds(15))
        #expect(await slow.waitForClose())
    }

    /// A connection that was answered and only waits to skip a body its client never sends
    /// does not hold the drain up to its timeout.
    @Test func drainClosesAnsweredConnectionsWaitingOnAnUnsentBody() async throws {
        // Neither the drain timeout nor the body timeout may be what ends it.
        let server = try Fixtures.server {
            $0.drainTimeout = .seconds(300)
            $0.bodyTimeout = .seconds(300)
        }
        let client = try await server.client()
        try await client.send("POST /refuse HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n")
        #expect(try await client.readResponse().status == 413)
        let started = ContinuousClock.now
        await server.stop()
        #expect(ContinuousClock.now - started < .seconds(60))
        #expect(await client.waitForClose())
    }
}
