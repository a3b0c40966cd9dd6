import Foundation
import PeerDistEngine
import ServerTesting
import Testing

/// Issue 18, part 9: page tokens are opaque (sealed with the server secret: no operation serial or
/// handle shows through), and open only in the listing of the principal they were given to.
@Suite struct PageTokenTests {
    static let id = APIFixture.contentID("content-1")

    static func start() async throws -> APIFixture {
        try await APIFixture.start(tokens: try AccessTests.tokens())
    }

    static func call(_ f: APIFixture, _ token: String, _ method: String, _ path: String) async throws -> RawResponse {
        try await AccessTests.call(f, token, method, path)
    }

    func expectMalformed(_ r: RawResponse, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == 400, "\(r.text)", sourceLocation: sourceLocation)
        #expect(r.code == 87, "\(r.text)", sourceLocation: sourceLocation)
        #expect(r.json["error"] as? String == "ERROR_INVALID_PARAMETER", sourceLocation: sourceLocation)
    }

    @Test func instanceTokensAreOpaqueAndTheCallersOwn() async throws {
        let f = try await Self.start()
        let a = AccessTests.aliceToken, b = AccessTests.bobToken
        var mine: [String] = []
        for _ in 0..<3 { mine.append(try #require(try await Self.call(f, a, "POST", "/instances").json["handle"] as? String)) }
        _ = try await Self.call(f, b, "POST", "/instances")

        let first = try await Self.call(f, a, "GET", "/instances?pageSize=1")
        let token = try #require(first.json["nextPageToken"] as? String, "\(first.text)")
        let firstHandle = try #require((first.json["instances"] as? [[String: Any]])?.first?["handle"] as? String)
        // Nothing of the cursor (the page's last handle) shows.
        #expect(!token.contains(firstHandle) && !token.hasPrefix("inst_"), "\(token)")
        #expect(!token.contains(String(firstHandle.dropFirst(5).prefix(8))), "\(token)")

        // The whole listing, a page at a time, is Alice's three instances, each once.
        var seen = [firstHandle]
        var next: String? = token
        while let page = next {
            let r = try await Self.call(f, a, "GET", "/instances?pageSize=1&pageToken=\(page)")
            #expect(r.status == 200, "\(r.text)")
            seen += (r.json["instances"] as? [[String: Any]] ?? []).compactMap { $0["handle"] as? String }
            next = r.json["nextPageToken"] as? String
        }
        #expect(seen == mine.sorted())

        // Bob cannot continue Alice's listing, and an altered token opens for no one.
        expectMalformed(try await Self.call(f, b, "GET", "/instances?pageSize=1&pageToken=\(token)"))
        let altered = String(token.dropLast()) + (token.last == "A" ? "B" : "A")
        expectMalformed(try await Self.call(f, a, "GET", "/instances?pageSize=1&pageToken=\(altered)"))
        // A former-style token (a handle) is refused.
        expectMalformed(try await Self.call(f, a, "GET", "/instances?pageSize=1&pageToken=\(firstHandle)"))
        await f.stop()
    }

    @Test func operationTokensAreBoundToTheirListing() async throws {
        let f = try await Self.start()
        let a = AccessTests.aliceToken, b = AccessTests.bobToken
        let h = try #require(try await Self.call(f, a, "POST", "/instances").json["handle"] as? String)
        let hb = try #require(try await Self.call(f, b, "POST", "/instances").json["handle"] as? String)
        let alice = try await f.newClient()
        for n in 0..<3 {
            let open = try await alice.request(
                "POST", "/instances/\(h)/content/\(Self.id)/streams", json: "{}", headers: [("Authorization", "Bearer \(a)")])
            let s = try #require(open.json["stream"] as? String, "\(open.text)")
            let append = try await alice.request(
                "POST", "/instances/\(h)/content/\(Self.id)/streams/\(s)/data?op=a\(n)", body: [1],
                headers: [("Authorization", "Bearer \(a)"), ("Prefer", "wait=5")])
            #expect(append.json["state"] as? String == "completed", "\(append.text)")
        }

        let listing = "/instances/\(h)/operations?pageSize=1"
        let one = try #require(try await Self.call(f, a, "GET", listing).json["nextPageToken"] as? String)
        let two = try #require(try await Self.call(f, a, "GET", listing).json["nextPageToken"] as? String)
        // Sealed afresh each time (a random nonce): the same cursor gives another token, and both open.
        #expect(one != two)
        #expect(!one.hasPrefix("p1."), "\(one)")
        for token in [one, two] {
            let page = try await Self.call(f, a, "GET", listing + "&pageToken=\(token)")
            #expect((page.json["operations"] as? [[String: Any]])?.first?["id"] as? String == "a1", "\(page.text)")
        }
        // Another listing of the same instance, another state filter, another principal's instance.
        expectMalformed(try await Self.call(f, a, "GET", "/instances/\(h)/content/\(Self.id)/operations?pageSize=1&pageToken=\(one)"))
        expectMalformed(try await Self.call(f, a, "GET", listing + "&state=completed&pageToken=\(one)"))
        expectMalformed(try await Self.call(f, b, "GET", "/instances/\(hb)/operations?pageSize=1&pageToken=\(one)"))
        // The content listing's own token works there.
        let byContent = "/instances/\(h)/content/\(Self.id)/operations?pageSize=2"
        let contentToken = try #require(try await Self.call(f, a, "GET", byContent).json["nextPageToken"] as? String)
        let rest = try await Self.call(f, a, "GET", byContent + "&pageToken=\(contentToken)")
        #expect((rest.json["operations"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == ["a2"], "\(rest.text)")
        await f.stop()
    }
}
