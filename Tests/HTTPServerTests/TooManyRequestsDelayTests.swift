@testable import HTTPServer
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

    /// Refusals of credentials are counted per client address in a window: past the allowance they
    /// are held; a new window starts afresh; the table of addresses is bounded, and when it is
    /// full of live windows a new address's refusals are held.
    @Test func refusalsPastTheAllowancePerAddressAreHeld() {
        let pacer = RefusalPacer(limit: 3, window: .seconds(10), maxAddresses: 2)
        let t0 = ContinuousClock.now
        #expect((0..<3).map { _ in pacer.record(peer: "a", now: t0) } == [false, false, false])
        #expect(pacer.record(peer: "a", now: t0 + .seconds(9)))
        #expect(!pacer.record(peer: "b", now: t0 + .seconds(9)), "another address has its own allowance")
        #expect(pacer.record(peer: "c", now: t0 + .seconds(9)), "the table is full of live windows")
        #expect(!pacer.record(peer: "a", now: t0 + .seconds(10)), "a new window")
        #expect(!pacer.record(peer: "c", now: t0 + .seconds(20)), "expired windows make room")
        // Only refusals of credentials count: a policy's 403 is not one.
        #expect(ProblemResponse.make(.http(401, "x")).isAccessRefusal && ProblemResponse.make(.http(403, "x")).isAccessRefusal)
        #expect(!ProblemResponse.make(HTTPError(status: 403, code: 1260, name: "ERROR_ACCESS_DISABLED_BY_POLICY", detail: "x")).isAccessRefusal)
        #expect(!ProblemResponse.make(.http(404, "x")).isAccessRefusal)
    }
}
