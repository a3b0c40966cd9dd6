import Foundation
import HTTPServer
import PeerDistAPI
import PeerDistEngine
import ServerTesting
import Testing

/// Tokens, principals and ownership over real sockets (API.md, Access; issue 10).
@Suite struct AccessTests {
    static let aliceToken = "alice-token-0123456789"
    static let bobToken = "bob-token-0123456789ab"
    static let adminToken = "admin-token-0123456789"

    static func tokens(_ text: String = "alice \(aliceToken)\nbob \(bobToken)\n") throws -> TokenTable {
        try TokenTable.parse(Array(text.utf8))
    }

    static func start(admin: Bool = true) async throws -> APIFixture {
        try await APIFixture.start(adminToken: admin ? adminToken : nil, tokens: try tokens())
    }

    /// One request on a connection of its own (a refused body must not upset the next request).
    static func call(_ f: APIFixture, _ token: String?, _ method: String, _ path: String, json: String? = nil,
                     body: [UInt8]? = nil) async throws -> RawResponse {
        let client = try await f.newClient()
        defer { client.close() }
        let headers = token.map { [("Authorization", "Bearer \($0)")] } ?? []
        return try await client.request(method, path, json: json, body: body, headers: headers)
    }

    // MARK: - Quotas

    /// Past a per-principal quota: 429 with Retry-After and problem+json 1816; another principal
    /// is served as before, and the room comes back when the use ends.
    @Test func quotaPastItsBoundIs429ForThatPrincipalOnly() async throws {
        let f = try await APIFixture.start(
            adminToken: Self.adminToken, tokens: try Self.tokens(),
            limits: EngineLimits(maxInstancesPerPrincipal: 2, maxParkedWaitersPerPrincipal: 1))
        let a = Self.aliceToken, b = Self.bobToken
        let h1 = try #require(try await Self.call(f, a, "POST", "/instances").json["handle"] as? String)
        #expect(try await Self.call(f, a, "POST", "/instances").status == 201)
        let refused = try await Self.call(f, a, "POST", "/instances")
        #expect(refused.status == 429)
        #expect(refused.header("Retry-After") == "1")
        #expect(refused.header("Content-Type") == "application/problem+json")
        #expect(refused.json["code"] as? Int == 1816)
        #expect(refused.json["error"] as? String == "ERROR_NOT_ENOUGH_QUOTA")
        #expect(try await Self.call(f, b, "POST", "/instances").status == 201)
        #expect(try await Self.call(f, a, "DELETE", "/instances/\(h1)").status == 200)
        #expect(try await Self.call(f, a, "POST", "/instances").status == 201)

        // One parked long-poll is Alice's quota: a second is 429 at once, Bob's parks.
        let listed = try #require(try await Self.call(f, a, "GET", "/instances").json["instances"] as? [[String: Any]])
        let second = try #require(listed.first?["handle"] as? String)
        let poller = try await f.newClient()
        try await poller.send(
            "GET /instances/\(second)/ports/default/completions?timeoutMs=30000 HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(a)\r\n\r\n")
        #expect(await eventually { f.engine.usage(of: "alice").parkedWaiters == 1 })
        let again = try await Self.call(f, a, "GET", "/instances/\(second)/ports/default/completions?timeoutMs=30000")
        #expect(again.status == 429)
        #expect(again.json["code"] as? Int == 1816)
        let hb = try #require(try await Self.call(f, b, "GET", "/instances").json["instances"] as? [[String: Any]]).first?["handle"] as? String
        let bobPoll = try await Self.call(f, b, "GET", "/instances/\(try #require(hb))/ports/default/completions?timeoutMs=50")
        #expect(bobPoll.status == 200)
        #expect(bobPoll.json["timedOut"] as? Bool == true)
        poller.close()
        await f.stop()
    }

    // MARK: - Isolation

    /// Bob tries every route under /instances/{h} with Alice's handles: each answer is exactly the
    /// answer for a handle that does not exist (status and body bytes), and Alice's state is intact.
    @Test func anotherPrincipalsHandlesAnswerAsHandlesThatDoNotExist() async throws {
        let f = try await Self.start()
        let a = Self.aliceToken, b = Self.bobToken
        // Alice: an instance, a second port, a publication, an open stream, a content-information
        // handle, and a pending operation (its completion held back by a fault delay).
        let h = try #require(try await Self.call(f, a, "POST", "/instances", json: "{}").json["handle"] as? String)
        let p = try #require(try await Self.call(f, a, "POST", "/instances/\(h)/ports").json["port"] as? String)
        let pub = APIFixture.contentID("published"), up = APIFixture.contentID("uploading")
        let ps = try #require(try await Self.call(f, a, "POST", "/instances/\(h)/content/\(pub)/streams", json: #"{"version":1}"#).json["stream"] as? String)
        let aliceClient = try await f.newClient()
        let auth = [("Authorization", "Bearer \(a)")]
        #expect(try await aliceClient.request("POST", "/instances/\(h)/content/\(pub)/streams/\(ps)/data", body: Array(repeating: 7, count: 1000), headers: auth + [("Prefer", "wait=10")]).json["state"] as? String == "completed")
        #expect(try await aliceClient.request("POST", "/instances/\(h)/content/\(pub)/streams/\(ps)/complete", headers: auth + [("Prefer", "wait=10")]).json["state"] as? String == "completed")
        let s = try #require(try await Self.call(f, a, "POST", "/instances/\(h)/content/\(up)/streams", json: #"{"version":1}"#).json["stream"] as? String)
        let c = try #require(try await Self.call(f, a, "POST", "/instances/\(h)/content/\(pub)/contentinfo", json: #"{"offset":0,"length":0}"#).json["contentInfo"] as? String)
        #expect(try await Self.call(f, Self.adminToken, "PUT", "/admin/faults", json: #"{"completionDelayMs":60000,"kinds":["publishAddToStream"]}"#).status == 200)
        let pending = try await Self.call(f, a, "POST", "/instances/\(h)/content/\(up)/streams/\(s)/data?op=alice-op", body: [1, 2, 3])
        #expect(pending.status == 202, "\(pending.text)")

        // Bob has an instance of his own.
        let hb = try #require(try await Self.call(f, b, "POST", "/instances", json: "{}").json["handle"] as? String)
        let ghost = "inst_" + String(repeating: "0", count: h.count - 5)

        /// Every route under an instance, with these handles.
        func routes(_ h: String, _ p: String, _ id: String, _ s: String, _ c: String, _ op: String) -> [(String, String, String?, [UInt8]?)] {
            [
                ("GET", "/instances/\(h)", nil, nil),
                ("GET", "/instances/\(h)/status?timeoutMs=0", nil, nil),
                ("POST", "/instances/\(h)/ports", nil, nil),
                ("GET", "/instances/\(h)/ports/\(p)/completions?timeoutMs=0", nil, nil),
                ("DELETE", "/instances/\(h)/ports/\(p)", nil, nil),
                ("POST", "/instances/\(h)/content/\(id)/streams", #"{"version":1}"#, nil),
                ("POST", "/instances/\(h)/content/\(id)/streams/\(s)/data", nil, [9, 9]),
                ("POST", "/instances/\(h)/content/\(id)/streams/\(s)/complete", nil, nil),
                ("DELETE", "/instances/\(h)/content/\(id)/streams/\(s)", nil, nil),
                ("GET", "/instances/\(h)/content/\(id)", nil, nil),
                ("POST", "/instances/\(h)/content/\(id)/contentinfo", #"{"offset":0,"length":0}"#, nil),
                ("GET", "/instances/\(h)/content/\(id)/contentinfo?version=1", nil, nil),
                ("POST", "/instances/\(h)/content/\(id)/contentinfo/\(c)/reads?maxBytes=100", nil, nil),
                ("DELETE", "/instances/\(h)/content/\(id)/contentinfo/\(c)", nil, nil),
                ("GET", "/instances/\(h)/content/\(id)/operations/\(op)?timeoutMs=0", nil, nil),
                ("GET", "/instances/\(h)/content/\(id)/operations/\(op)/buffer", nil, nil),
                ("GET", "/instances/\(h)/content/\(id)/operations", nil, nil),
                ("GET", "/instances/\(h)/operations/\(op)", nil, nil),
                ("GET", "/instances/\(h)/operations", nil, nil),
                ("DELETE", "/instances/\(h)/content/\(id)/operations/\(op)", nil, nil),
                ("DELETE", "/instances/\(h)/content/\(id)", nil, nil),
                ("DELETE", "/instances/\(h)", nil, nil),
            ]
        }

        // 1. Alice's instance in the path, against an instance that does not exist.
        var compared = 0
        for (foreign, missing) in zip(routes(h, p, up, s, c, "alice-op"), routes(ghost, p, up, s, c, "alice-op")) {
            let got = try await Self.call(f, b, foreign.0, foreign.1, json: foreign.2, body: foreign.3)
            let want = try await Self.call(f, b, missing.0, missing.1, json: missing.2, body: missing.3)
            #expect(got.status == 404 && got.code == 6, "\(foreign.0) \(foreign.1): \(got.status) \(got.text)")
            #expect(got.status == want.status && got.body == want.body, "\(foreign.0) \(foreign.1): \(got.text) vs \(want.text)")
            #expect(got.header("Content-Type") == want.header("Content-Type"))
            compared += 1
        }
        #expect(compared == 22)

        // 2. Bob's own instance with Alice's port, stream, content information, operation and
        // publication, against ones that never existed. (The instance-level routes are left out:
        // they are Bob's own.)
        let gp = "port_" + String(repeating: "0", count: max(1, p.count - 5))
        let gs = "strm_" + String(repeating: "0", count: max(1, s.count - 5))
        let gc = "cinf_" + String(repeating: "0", count: max(1, c.count - 5))
        let never = APIFixture.contentID("never published")
        for (content, ghostContent) in [(up, up), (pub, never)] {
            let theirs = routes(hb, p, content, s, c, "alice-op").filter { !$0.1.hasSuffix("/ports") && $0.1 != "/instances/\(hb)" && !$0.1.hasPrefix("/instances/\(hb)/status") && !$0.1.hasSuffix("/streams") }
            let none = routes(hb, gp, ghostContent, gs, gc, "alice-op").filter { !$0.1.hasSuffix("/ports") && $0.1 != "/instances/\(hb)" && !$0.1.hasPrefix("/instances/\(hb)/status") && !$0.1.hasSuffix("/streams") }
            for (foreign, missing) in zip(theirs, none) {
                let got = try await Self.call(f, b, foreign.0, foreign.1, json: foreign.2, body: foreign.3)
                let want = try await Self.call(f, b, missing.0, missing.1, json: missing.2, body: missing.3)
                #expect(got.status == want.status && got.body == want.body, "\(foreign.0) \(foreign.1): \(got.status) \(got.text) vs \(want.status) \(want.text)")
                #expect(got.status != 200 || foreign.1.hasSuffix("/operations"), "\(foreign.0) \(foreign.1) answered \(got.status)")
                if foreign.1.hasSuffix("/operations") {
                    #expect((got.json["operations"] as? [Any])?.isEmpty == true, "Bob sees no operation of Alice's: \(got.text)")
                }
            }
        }

        // Alice's things are all still there.
        #expect(try await Self.call(f, a, "GET", "/instances/\(h)").status == 200)
        #expect(try await Self.call(f, a, "GET", "/instances/\(h)/operations/alice-op").json["state"] as? String == "pending")
        #expect(try await Self.call(f, a, "GET", "/instances/\(h)/ports/\(p)/completions?timeoutMs=0").status == 200)
        #expect(try await Self.call(f, a, "GET", "/instances/\(h)/content/\(pub)").status == 200)
        #expect(try await Self.call(f, a, "POST", "/instances/\(h)/content/\(pub)/contentinfo/\(c)/reads?maxBytes=100").status < 300)
        // Publications are per principal: Bob may publish the same content identifier.
        #expect(try await Self.call(f, b, "POST", "/instances/\(hb)/content/\(pub)/streams", json: #"{"version":1}"#).status == 201)
        // Each lists only its own instances.
        let mine = try await Self.call(f, a, "GET", "/instances")
        #expect((mine.json["instances"] as? [[String: Any]])?.compactMap { $0["handle"] as? String } == [h])
        let his = try await Self.call(f, b, "GET", "/instances")
        #expect((his.json["instances"] as? [[String: Any]])?.compactMap { $0["handle"] as? String } == [hb])
        #expect(try await Self.call(f, Self.adminToken, "PUT", "/admin/faults", json: "{}").status == 200)
        aliceClient.close()
        await f.stop()
    }

    /// `GET /instances`: the caller's own, paged by `pageSize` and `nextPageToken`, with dates.
    @Test func listingInstancesPagesThroughTheCallersOwn() async throws {
        let f = try await Self.start()
        var made: Set<String> = []
        for _ in 0..<5 {
            made.insert(try #require(try await Self.call(f, Self.aliceToken, "POST", "/instances").json["handle"] as? String))
        }
        _ = try await Self.call(f, Self.bobToken, "POST", "/instances")
        var seen: [String] = []
        var token: String?
        var pages = 0
        repeat {
            let query = "pageSize=2" + (token.map { "&pageToken=\($0)" } ?? "")
            let r = try await Self.call(f, Self.aliceToken, "GET", "/instances?\(query)")
            #expect(r.status == 200)
            let items = r.json["instances"] as? [[String: Any]] ?? []
            #expect(items.count <= 2)
            for item in items {
                seen.append(item["handle"] as? String ?? "")
                #expect(item["createdAt"] is String && item["lastActivityAt"] is String && item["status"] as? String == "available")
            }
            token = r.json["nextPageToken"] as? String
            pages += 1
        } while token != nil && pages < 10
        #expect(pages == 3)
        #expect(Set(seen) == made && seen.count == 5)
        #expect(try await Self.call(f, Self.aliceToken, "GET", "/instances?pageToken=nope").status == 400)
        #expect(try await Self.call(f, Self.aliceToken, "GET", "/instances?pageSize=0").status == 400)
        await f.stop()
    }

    // MARK: - Answers

    @Test func missingOrUnknownTokenIs401WithABearerChallenge() async throws {
        let f = try await Self.start()
        for (token, challenge) in [(nil, #"Bearer realm="peerdist""#), ("not-a-known-token-at-all", #"Bearer realm="peerdist", error="invalid_token""#)] {
            for (method, path) in [("POST", "/instances"), ("GET", "/instances"), ("GET", "/instances/inst_x"), ("GET", "/no/such/route"),
                                   ("GET", "/openapi.yaml"), ("PUT", "/admin/policy")] {
                let r = try await Self.call(f, token, method, path, json: method == "GET" ? nil : "{}")
                #expect(r.status == 401, "\(method) \(path) with \(token ?? "no token"): \(r.status)")
                #expect(r.code == 5 && r.json["error"] as? String == "ERROR_ACCESS_DENIED")
                #expect(r.header("Content-Type") == "application/problem+json")
                #expect(r.header("WWW-Authenticate") == challenge)
            }
        }
        // Another scheme, or two Authorization fields, is no credential.
        let client = try await f.newClient()
        #expect(try await client.request("GET", "/instances", headers: [("Authorization", "Basic \(Self.aliceToken)")]).status == 401)
        #expect(try await client.request("GET", "/instances", headers: [("Authorization", "Bearer \(Self.aliceToken)"), ("Authorization", "Bearer \(Self.bobToken)")]).status == 401)
        // The scheme is case-insensitive.
        #expect(try await client.request("GET", "/instances", headers: [("Authorization", "bEaReR \(Self.aliceToken)")]).status == 200)
        // Probes and scrapes need no token.
        for path in ["/healthz", "/readyz", "/metrics"] {
            #expect(try await client.request("GET", path).status == 200, "\(path)")
        }
        client.close()
        await f.stop()
    }

    @Test func adminRoutesWantTheAdminToken() async throws {
        let f = try await Self.start()
        for path in ["/admin/policy", "/admin/service", "/admin/faults"] {
            let alice = try await Self.call(f, Self.aliceToken, "GET", path)
            #expect(alice.status == 403 && alice.code == 5, "\(path): \(alice.text)")
            #expect(alice.header("Content-Type") == "application/problem+json")
            let put = try await Self.call(f, Self.aliceToken, "PUT", path, json: path == "/admin/policy" ? #"{"enabled":false}"# : "{}")
            #expect(put.status == 403 && put.code == 5)
            #expect(try await Self.call(f, nil, "GET", path).status == 401)
            #expect(try await Self.call(f, Self.adminToken, "GET", path).status == 200)
        }
        // Alice's refused PUT changed nothing.
        #expect(f.engine.serviceControls.policyEnabled)
        // The admin token is a principal of its own elsewhere: it sees no one else's instances.
        let h = try #require(try await Self.call(f, Self.aliceToken, "POST", "/instances").json["handle"] as? String)
        #expect(try await Self.call(f, Self.adminToken, "GET", "/instances/\(h)").status == 404)
        #expect(try await Self.call(f, Self.adminToken, "POST", "/instances").status == 201)
        await f.stop()
    }

    /// With tokens but no admin token, /admin/* is closed to every caller (403, code 5): an
    /// authenticated principal must not switch the service off for all (issue 18, item 5).
    @Test func withTokensButNoAdminTokenAdminRoutesAre403ToEveryone() async throws {
        let f = try await Self.start(admin: false)
        #expect(f.service.access.adminAccess == .closed)
        for token in [Self.aliceToken, Self.bobToken] {
            for (method, path, json) in [("GET", "/admin/policy", nil), ("PUT", "/admin/policy", #"{"enabled":false}"#),
                                         ("GET", "/admin/faults", nil), ("PUT", "/admin/faults", #"{"completionDelayMs":60000}"#),
                                         ("GET", "/admin/service", nil), ("PUT", "/admin/service", #"{"available":false}"#)] {
                let r = try await Self.call(f, token, method, path, json: json)
                #expect(r.status == 403 && r.code == 5, "\(method) \(path): \(r.status) \(r.text)")
                #expect(r.header("Content-Type") == "application/problem+json")
            }
        }
        #expect(try await Self.call(f, nil, "GET", "/admin/policy").status == 401)
        // Nothing changed.
        #expect(f.engine.serviceControls.policyEnabled)
        #expect(f.engine.serviceControls.available)
        #expect(f.engine.faults.completionDelayMs == 0)
        await f.stop()
    }

    /// An admin token shorter than callers' tokens may be (16 bytes) is refused at start.
    @Test func shortAdminTokenIsRefused() throws {
        #expect(throws: AccessControl.ConfigurationError.self) { try AccessControl(tokens: nil, adminToken: "s3cret") }
        #expect(throws: AccessControl.ConfigurationError.self) { try AccessControl(tokens: try Self.tokens(), adminToken: "fifteen-bytes-x") }
        _ = try AccessControl(tokens: nil, adminToken: "sixteen-bytes-xx")
    }

    /// Past 20 refusals (401 or 403) to one address in 10 s, further ones are held as a 429 is
    /// (`--too-many-requests-delay`), on HTTP/1.1 and HTTP/2, whether a filter (401) or a handler
    /// (403) refused: tokens cannot be guessed at full speed. Other answers are not held.
    @Test func refusalsToOneAddressAreSlowedPastTwentyInTenSeconds() async throws {
        var configuration = ServerConfiguration()
        configuration.tooManyRequestsDelay = .milliseconds(1_500)
        // The default 20, in a window that a loaded machine cannot outlast (the 10 s window's
        // expiry is `TooManyRequestsDelayTests`'s).
        configuration.refusalWindow = .seconds(600)
        let f = try await APIFixture.start(adminToken: Self.adminToken, tokens: try Self.tokens(), configuration: configuration)
        let client = try await f.newClient()
        let bad = [("Authorization", "Bearer guessed-token-0000000000")]
        let alice = [("Authorization", "Bearer \(Self.aliceToken)")]
        for index in 0..<20 {
            let r = try await client.request("GET", index % 2 == 0 ? "/instances" : "/admin/policy", headers: index % 2 == 0 ? bad : alice)
            #expect(r.status == (index % 2 == 0 ? 401 : 403))
        }
        for (path, headers, status) in [("/instances", bad, 401), ("/admin/policy", alice, 403)] {
            let started = ContinuousClock.now
            let r = try await client.request("GET", path, headers: headers)
            #expect(r.status == status && r.code == 5)
            #expect(ContinuousClock.now - started >= .milliseconds(1_500), "\(status) answered without the delay")
        }
        let started = ContinuousClock.now
        #expect(try await client.request("GET", "/instances", headers: alice).status == 200)
        #expect(ContinuousClock.now - started < .milliseconds(1_500), "a 200 is not held")
        client.close()
        let h2 = try await H2Client.connect(port: f.server.port)
        let h2Started = ContinuousClock.now
        let refused = try #require(try await h2.wait(for: [h2.submit("GET", "/instances", headers: [("authorization", "Bearer guessed-token-0000000000")])]).first)
        #expect(refused.status == 401)
        #expect(ContinuousClock.now - h2Started >= .milliseconds(1_500))
        h2.close()
        await f.stop()
    }

    // MARK: - Host

    /// While open (no tokens file), only requests for a loopback host (any port) or an
    /// --allowed-host name are answered; others get 421 problem+json, /admin/* and probes
    /// included, on HTTP/1.1 and HTTP/2: a page using DNS rebinding gets nothing.
    @Test func openServiceAnswersOnlyLoopbackOrAllowedHosts() async throws {
        let f = try await APIFixture.start(allowedHosts: ["PeerDist.Internal"])
        for host in ["attacker.example", "attacker.example:8080", "127.0.0.1.attacker.example", "localhost.attacker.example",
                     "[::2]:80", "10.0.0.1", "peerdist.internal.example", ""] {
            for path in ["/instances", "/admin/policy", "/healthz"] {
                let client = try await f.newClient()
                try await client.send("GET \(path) HTTP/1.1\r\nHost: \(host)\r\n\r\n")
                let r = try await client.readResponse()
                #expect(r.status == 421 && r.code == 5, "Host '\(host)' \(path): \(r.status) \(r.text)")
                #expect(r.header("Content-Type") == "application/problem+json")
                client.close()
            }
        }
        // An absolute-form target names the host too.
        let absolute = try await f.newClient()
        try await absolute.send("GET http://attacker.example/admin/policy HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        #expect(try await absolute.readResponse().status == 421)
        absolute.close()
        for host in ["localhost", "LOCALHOST:8080", "127.0.0.1", "127.0.0.1:1", "127.1.2.3:65535", "[::1]", "[::1]:8080",
                     "peerdist.internal", "peerdist.internal:8080"] {
            let client = try await f.newClient()
            try await client.send("GET /admin/policy HTTP/1.1\r\nHost: \(host)\r\n\r\n")
            let r = try await client.readResponse()
            #expect(r.status == 200, "Host '\(host)': \(r.status) \(r.text)")
            client.close()
        }
        let h2 = try await H2Client.connect(port: f.server.port)
        let refused = try #require(try await h2.wait(for: [h2.submit("GET", "/instances", authority: "attacker.example:80")]).first)
        #expect(refused.status == 421)
        let served = try #require(try await h2.wait(for: [h2.submit("GET", "/instances", authority: "localhost:80")]).first)
        #expect(served.status == 200)
        h2.close()
        await f.stop()
    }

    /// With a tokens file the token is the guard: any Host is served.
    @Test func withTokensAnyHostIsServed() async throws {
        let f = try await APIFixture.start(tokens: try Self.tokens(), allowedHosts: [])
        let client = try await f.newClient()
        try await client.send("GET /instances HTTP/1.1\r\nHost: peerdist.example:8080\r\nAuthorization: Bearer \(Self.aliceToken)\r\n\r\n")
        #expect(try await client.readResponse().status == 200)
        client.close()
        await f.stop()
    }

    /// Without tokens, everything is open as before and every caller is one principal.
    @Test func withoutTokensEveryCallerIsOnePrincipal() async throws {
        let f = try await APIFixture.start()
        let h = try #require(try await Self.call(f, nil, "POST", "/instances").json["handle"] as? String)
        #expect(try await Self.call(f, "whatever-token-1234567", "GET", "/instances/\(h)").status == 200)
        let list = try await Self.call(f, nil, "GET", "/instances")
        #expect((list.json["instances"] as? [[String: Any]])?.compactMap { $0["handle"] as? String } == [h])
        #expect(try await Self.call(f, nil, "GET", "/admin/policy").status == 200)
        await f.stop()
    }

    /// A request-target that does not begin with `/` never reaches a route: 400 (code 87) on
    /// HTTP/1.1 and on HTTP/2, before authentication, so no spelling of a path slips past it.
    @Test func targetWithoutLeadingSlashIs400() async throws {
        let f = try await Self.start()
        for line in ["GET x/admin/policy HTTP/1.1", "GET admin/policy HTTP/1.1", "OPTIONS * HTTP/1.1", "GET http:/admin/policy HTTP/1.1"] {
            let client = try await f.newClient()
            try await client.send("\(line)\r\nHost: t\r\nAuthorization: Bearer \(Self.adminToken)\r\n\r\n")
            let r = try await client.readResponse()
            #expect(r.status == 400 && r.code == 87, "\(line): \(r.status) \(r.text)")
            client.close()
        }
        // HTTP/2: such a :path makes the request malformed (RFC 9113 §8.3.1), and nghttp2 resets
        // the stream with PROTOCOL_ERROR before the server sees it: no route is reached either.
        let h2 = try await H2Client.connect(port: f.server.port)
        for path in ["x/admin/policy", "admin/policy", "instances"] {
            let id = h2.submit("PUT", path, headers: [("authorization", "Bearer \(Self.adminToken)"), ("content-type", "application/json")],
                               body: Array(#"{"enabled":false}"#.utf8))
            let r = try #require(try await h2.wait(for: [id]).first)
            #expect(r.status == nil && r.resetCode == 1, "\(path): \(String(describing: r.status)) \(String(describing: r.resetCode))")
        }
        #expect(f.engine.serviceControls.policyEnabled, "no PUT reached /admin/policy")
        // The same connection still serves a proper request.
        #expect(try await h2.request("GET", "/admin/policy", headers: [("authorization", "Bearer \(Self.adminToken)")]).status == 200)
        h2.close()
        await f.stop()
    }

    // MARK: - Reload

    /// A principal removed by a reload loses its instances as `DELETE /instances/{h}` takes them:
    /// its pending operation ends with 995 (its completion handed to the parked dequeue), its
    /// status wait is woken (410, 995); the name given out again later sees none of it; another
    /// principal keeps its instance (issue 18, item 8).
    @Test func removingAPrincipalShutsItsInstancesDown() async throws {
        let f = try await Self.start()
        let a = Self.aliceToken, b = Self.bobToken
        let h = try #require(try await Self.call(f, a, "POST", "/instances").json["handle"] as? String)
        let hb = try #require(try await Self.call(f, b, "POST", "/instances").json["handle"] as? String)
        try f.engine.setFaults(FaultSettings(completionDelayMs: 600_000, kinds: [.publishAddToStream]))
        let s = try #require(try await Self.call(f, a, "POST", "/instances/\(h)/content/aGVsbG8/streams", json: #"{"contentLength":3}"#)
            .json["stream"] as? String)
        let append = try await Self.call(f, a, "POST", "/instances/\(h)/content/aGVsbG8/streams/\(s)/data?op=append-1", body: [1, 2, 3])
        #expect(append.status == 202 && append.json["state"] as? String == "pending", "\(append.text)")
        let dequeue = try await f.newClient()
        try await dequeue.send("GET /instances/\(h)/ports/default/completions?timeoutMs=30000 HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(a)\r\n\r\n")
        let status = try await f.newClient()
        try await status.send("GET /instances/\(h)/status?timeoutMs=30000 HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(a)\r\n\r\n")
        #expect(await eventually { f.engine.usage(of: "alice").parkedWaiters == 2 })

        let (revoked, shut) = await (try f.service.replaceTokens(try Self.tokens("bob \(b)\n"))).value
        #expect(revoked == ["alice"] && shut == 1)
        let completions = try await dequeue.readResponse()
        #expect(completions.status == 200, "\(completions.text)")
        let entry = (completions.json["completions"] as? [[String: Any]])?.first
        #expect(entry?["operation"] as? String == "append-1" && (entry?["result"] as? [String: Any])?["code"] as? Int == 995, "\(completions.text)")
        let woken = try await status.readResponse()
        #expect(woken.status == 410 && woken.code == 995, "\(woken.text)")
        #expect(f.engine.usage(of: "alice") == PrincipalUsage())

        // The name given out again, with a new token: nothing of before.
        try f.service.replaceTokens(try Self.tokens("bob \(b)\nalice alice-new-token-0123456789\n"))
        let again = "alice-new-token-0123456789"
        #expect((try await Self.call(f, again, "GET", "/instances").json["instances"] as? [[String: Any]])?.isEmpty == true)
        let gone = try await Self.call(f, again, "GET", "/instances/\(h)")
        #expect(gone.status == 404 && gone.code == 6)
        #expect(try await Self.call(f, b, "GET", "/instances/\(hb)").status == 200)
        dequeue.close()
        status.close()
        await f.stop()
    }

    /// Replacing the tokens takes effect at once on open connections; a table that reuses the
    /// admin token is refused and the old one stays.
    @Test func replacingTokensKeepsConnections() async throws {
        let f = try await Self.start()
        let client = try await f.newClient()
        #expect(try await client.request("GET", "/instances", headers: [("Authorization", "Bearer \(Self.aliceToken)")]).status == 200)
        try f.service.access.replaceTokens(try Self.tokens("carol carol-token-0123456789\n"))
        #expect(try await client.request("GET", "/instances", headers: [("Authorization", "Bearer \(Self.aliceToken)")]).status == 401)
        #expect(try await client.request("GET", "/instances", headers: [("Authorization", "Bearer carol-token-0123456789")]).status == 200)
        #expect(throws: AccessControl.ConfigurationError.self) {
            try f.service.access.replaceTokens(try Self.tokens("mallory \(Self.adminToken)\n"))
        }
        #expect(try await client.request("GET", "/instances", headers: [("Authorization", "Bearer carol-token-0123456789")]).status == 200)
        client.close()
        await f.stop()
    }
}
