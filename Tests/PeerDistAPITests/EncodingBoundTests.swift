import Foundation
import HTTPServer
import PeerDistAPI
import ServerTesting
import Synchronization
import Testing

@testable import PeerDistEngine

/// Routes that encode a content information run off the connection's worker queue, at most two
/// at once per principal; `/healthz` says when the instance cap is near (issue 18 item 10). Real
/// sockets, two principals.
@Suite struct EncodingBoundTests {
    /// Holds alice's encodings until released; counts those that started.
    final class Gate: Sendable {
        let held = Atomic<Int>(0)
        let release = DispatchSemaphore(value: 0)

        func hook(_ principal: String) {
            guard principal == "alice" else { return }
            held.add(1, ordering: .relaxed)
            release.wait()
        }
    }

    static func publish(_ f: APIFixture, _ token: String, _ h: String, _ id: String) async throws {
        let s = try #require(
            try await AccessTests.call(f, token, "POST", "/instances/\(h)/content/\(id)/streams", json: #"{"version":1}"#).json["stream"] as? String)
        let client = try await f.newClient()
        defer { client.close() }
        let auth = ("Authorization", "Bearer \(token)")
        let append = try await client.request(
            "POST", "/instances/\(h)/content/\(id)/streams/\(s)/data", body: Array(repeating: 5, count: 200_000), headers: [auth, ("Prefer", "wait=10")])
        #expect(append.json["state"] as? String == "completed", "\(append.text)")
        let done = try await client.request("POST", "/instances/\(h)/content/\(id)/streams/\(s)/complete", headers: [auth, ("Prefer", "wait=10")])
        #expect(done.json["state"] as? String == "completed", "\(done.text)")
    }

    /// Two of alice's whole-content-information downloads are held in their encoding: a third, and
    /// an open of a handle, are 429 (1816, Retry-After) at once; bob downloads his; probes on other
    /// connections answer (no worker queue is held); released, alice's two answer 200.
    @Test func twoEncodingsAtOncePerPrincipalOffTheWorkerQueue() async throws {
        let f = try await APIFixture.start(tokens: try AccessTests.tokens())
        defer { Task { await f.stop() } }
        let (a, b) = (AccessTests.aliceToken, AccessTests.bobToken)
        let hA = try #require(try await AccessTests.call(f, a, "POST", "/instances").json["handle"] as? String)
        let hB = try #require(try await AccessTests.call(f, b, "POST", "/instances").json["handle"] as? String)
        let id = APIFixture.contentID("encoded")
        try await Self.publish(f, a, hA, id)
        try await Self.publish(f, b, hB, id)

        let gate = Gate()
        f.engine.state.withLock { $0.encodingHook = { gate.hook($0) } }
        let path = "/instances/\(hA)/content/\(id)/contentinfo?version=1"
        var held: [RawHTTPClient] = []
        for _ in 0..<2 {
            let client = try await f.newClient()
            try await client.send("GET \(path) HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(a)\r\n\r\n")
            held.append(client)
        }
        #expect(await eventually { gate.held.load(ordering: .relaxed) == 2 })

        let third = try await AccessTests.call(f, a, "GET", path)
        #expect(third.status == 429, "\(third.text)")
        #expect(third.header("Retry-After") == "1")
        #expect(third.json["code"] as? Int == 1816)
        let open = try await AccessTests.call(f, a, "POST", "/instances/\(hA)/content/\(id)/contentinfo", json: #"{"minVersion":1,"maxVersion":1}"#)
        #expect(open.status == 429, "\(open.text)")
        #expect(open.json["code"] as? Int == 1816)

        let bobs = try await AccessTests.call(f, b, "GET", "/instances/\(hB)/content/\(id)/contentinfo?version=1")
        #expect(bobs.status == 200)
        #expect(bobs.body.count > 100)
        for _ in 0..<4 {
            let probe = try await f.newClient()
            defer { probe.close() }
            #expect(try await probe.request("GET", "/healthz", timeout: .seconds(5)).status == 200)
        }
        #expect(gate.held.load(ordering: .relaxed) == 2)

        gate.release.signal()
        gate.release.signal()
        for client in held {
            let answer = try await client.readResponse()
            #expect(answer.status == 200)
            #expect(answer.body == bobs.body)  // the same bytes published, the same secret
            client.close()
        }
        // Room again once they ended.
        f.engine.state.withLock { $0.encodingHook = nil }
        #expect(try await AccessTests.call(f, a, "GET", path).status == 200)
    }

    /// `/healthz` reports the instances open against the global cap, and `nearCap` once fewer are
    /// free than one principal may open.
    @Test func healthzSaysWhenTheInstanceCapIsNear() async throws {
        let f = try await APIFixture.start(
            tokens: try AccessTests.tokens(), limits: EngineLimits(maxInstances: 4, maxInstancesPerPrincipal: 2))
        defer { Task { await f.stop() } }
        func health() async throws -> [String: Any] {
            let r = try await AccessTests.call(f, nil, "GET", "/healthz")
            #expect(r.status == 200)
            #expect(r.json["status"] as? String == "ok")
            return try #require(r.json["instances"] as? [String: Any], "\(r.text)")
        }
        var now = try await health()
        #expect(now["open"] as? Int == 0)
        #expect(now["max"] as? Int == 4)
        #expect(now["nearCap"] as? Bool == false)
        for _ in 0..<2 { #expect(try await AccessTests.call(f, AccessTests.aliceToken, "POST", "/instances").status == 201) }
        now = try await health()
        #expect(now["open"] as? Int == 2)
        #expect(now["nearCap"] as? Bool == false)
        #expect(try await AccessTests.call(f, AccessTests.bobToken, "POST", "/instances").status == 201)
        now = try await health()
        #expect(now["open"] as? Int == 3)
        #expect(now["nearCap"] as? Bool == true)
    }
}
