import HTTPServer
import ServerTesting
import Testing

/// A 429 is held for `tooManyRequestsDelay` before it is sent (a client hammering a quota is
/// slowed); other answers are not held.
@Suite struct TooManyRequestsDelayTests {
    static let routes: [Route] = [
        .sync(.get, "/busy") { _ in ProblemResponse.make(.http(429, "come back later")) },
        .sync(.get, "/ok") { _ in .json(200, "{}") },
    ]

    @Test func a429IsHeldForTheDelayAndOtherAnswersAreNot() async throws {
        var configuration = ServerConfiguration()
        configuration.headerTimeout = .seconds(120)
        configuration.tooManyRequestsDelay = .milliseconds(400)
        let server = try TestServer(routes: Self.routes, configuration: configuration)
        let client = try await server.client()
        for _ in 0..<3 {
            let started = ContinuousClock.now
            let busy = try await client.request("GET", "/busy")
            #expect(busy.status == 429)
            #expect(ContinuousClock.now - started >= .milliseconds(400))
        }
        // The same connection serves on; a held 429 does not hold up what follows it.
        #expect(try await client.request("GET", "/ok").status == 200)

        configuration.tooManyRequestsDelay = .zero
        let prompt = try TestServer(routes: Self.routes, configuration: configuration)
        #expect(try await prompt.client().request("GET", "/busy").status == 429)
        await server.stop()
        await prompt.stop()
    }
}
