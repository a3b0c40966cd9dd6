import Foundation
import HTTPServer
import PeerDistAPI
import PeerDistEngine
import ServerTesting
import Testing

/// `/metrics` behind `--metrics-token`, and the memory totals it serves without naming a
/// principal unless `--metrics-principals` (issue 18 items 4 and 6), with two principals.
@Suite struct MetricsAccessTests {
    static let metricsToken = "scrape-token-0123456789"

    static func scrape(_ f: APIFixture, token: String?) async throws -> RawResponse {
        try await AccessTests.call(f, token, "GET", "/metrics")
    }

    /// Alice publishes and opens a content-information handle: the totals count its encoded copy.
    static func aliceHoldsContentInformation(_ f: APIFixture) async throws -> Int {
        let a = AccessTests.aliceToken
        let h = try #require(try await AccessTests.call(f, a, "POST", "/instances").json["handle"] as? String)
        let id = APIFixture.contentID("scraped")
        let s = try #require(
            try await AccessTests.call(f, a, "POST", "/instances/\(h)/content/\(id)/streams", json: #"{"version":1}"#).json["stream"] as? String)
        let client = try await f.newClient()
        defer { client.close() }
        let auth = ("Authorization", "Bearer \(a)")
        _ = try await client.request("POST", "/instances/\(h)/content/\(id)/streams/\(s)/data", body: Array(repeating: 3, count: 300_000), headers: [auth, ("Prefer", "wait=10")])
        _ = try await client.request("POST", "/instances/\(h)/content/\(id)/streams/\(s)/complete", headers: [auth, ("Prefer", "wait=10")])
        let info = try await client.request("GET", "/instances/\(h)/content/\(id)/contentinfo?version=1", headers: [auth])
        #expect(info.status == 200)
        let open = try await client.request("POST", "/instances/\(h)/content/\(id)/contentinfo", json: #"{"minVersion":1,"maxVersion":1}"#, headers: [auth])
        #expect(open.status == 201, "\(open.text)")
        return info.body.count
    }

    /// With a metrics token, a scrape without it, or with a caller's token, is 401 with the Bearer
    /// challenge; with it, 200. The memory totals carry no principal's name.
    @Test func metricsWantTheMetricsToken() async throws {
        let f = try await APIFixture.start(tokens: try AccessTests.tokens(), metricsToken: Self.metricsToken)
        defer { Task { await f.stop() } }
        let held = try await Self.aliceHoldsContentInformation(f)
        for token in [nil, AccessTests.aliceToken, "not-the-scrape-token-0123"] {
            let refused = try await Self.scrape(f, token: token)
            #expect(refused.status == 401, "token \(token ?? "none")")
            #expect(refused.header("WWW-Authenticate")?.hasPrefix("Bearer") == true)
            #expect(refused.header("Content-Type") == "application/problem+json")
        }
        let scraped = try await Self.scrape(f, token: Self.metricsToken)
        #expect(scraped.status == 200)
        #expect(MetricsTests.sample(scraped.text, #"peerdist_memory_bytes{kind="content_information"}"#) == Double(held))
        #expect(MetricsTests.sample(scraped.text, #"peerdist_memory_bytes{kind="uploads"}"#) == 0)
        #expect(!scraped.text.contains("alice"))
        #expect(!scraped.text.contains("peerdist_principal_memory_bytes"))
        // The probes stay open.
        #expect(try await AccessTests.call(f, nil, "GET", "/healthz").status == 200)
    }

    /// `--metrics-principals`: each principal's memory is a series of its own; one that holds
    /// nothing now reads 0 (bob never held any, so he has none).
    @Test func principalsAreLabelledOnlyWhenAskedFor() async throws {
        let f = try await APIFixture.start(tokens: try AccessTests.tokens(), metricsPrincipals: true)
        defer { Task { await f.stop() } }
        let held = try await Self.aliceHoldsContentInformation(f)
        let scraped = try await Self.scrape(f, token: nil)
        #expect(scraped.status == 200)
        #expect(MetricsTests.sample(scraped.text, #"peerdist_principal_memory_bytes{principal="alice"}"#) == Double(held))
        #expect(!scraped.text.contains(#"principal="bob""#))
    }
}
