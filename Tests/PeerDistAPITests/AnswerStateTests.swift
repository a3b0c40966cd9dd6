import Foundation
import PeerDistEngine
import ServerTesting
import Testing

/// API.md, Conventions: 202 always means pending. A call that starts an operation answers with the
/// operation's state at the moment the answer is made: 202 while pending, 200 once it has ended.
@Suite struct AnswerStateTests {
    static let name = "content-1"
    static let id = APIFixture.contentID(name)
    static let idBytes = Array(name.utf8)

    /// Starts an upload of 10 declared bytes, sends 3 of them and waits until the append is pending.
    func startUpload(_ f: APIFixture, _ h: String, _ s: String, op: String) async throws -> RawHTTPClient {
        let uploader = try await f.newClient()
        try await uploader.send(
            "POST /instances/\(h)/content/\(Self.id)/streams/\(s)/data?op=\(op) HTTP/1.1\r\nHost: t\r\n"
                + "Content-Type: application/octet-stream\r\nContent-Length: 10\r\n\r\nabc")
        #expect(await eventually { (try? f.engine.operation(instance: h, contentId: Self.idBytes, operation: op)) != nil })
        return uploader
    }

    @Test func uploadWhoseStreamClosesWhileItsBodyArrivesAnswers200Canceled() async throws {
        let f = try await APIFixture.start()
        let h = try await f.startup()
        let s = try await f.openStream(h, Self.id)
        let uploader = try await startUpload(f, h, s, op: "u1")
        #expect(try await f.client.request("DELETE", "/instances/\(h)/content/\(Self.id)/streams/\(s)").status == 200)
        try await uploader.send("defghij")
        let answer = try await uploader.readResponse()
        #expect(answer.status == 200, "\(answer.text)")
        #expect(answer.json["state"] as? String == "canceled")
        #expect(answer.json.resultCode == 995)
        await f.stop()
    }

    @Test func uploadWhoseInstanceShutsDownWhileItsBodyArrivesAnswers200Canceled() async throws {
        let f = try await APIFixture.start()
        let h = try await f.startup()
        let s = try await f.openStream(h, Self.id)
        let uploader = try await startUpload(f, h, s, op: "u2")
        #expect(try await f.client.request("DELETE", "/instances/\(h)").status == 200)
        try await uploader.send("defghij")
        let answer = try await uploader.readResponse()
        #expect(answer.status == 200, "\(answer.text)")
        #expect(answer.json["state"] as? String == "canceled")
        #expect(answer.json.resultCode == 995)
        await f.stop()
    }

    @Test func uploadInvalidatedWhileItsBodyArrivesAnswers200Failed() async throws {
        let f = try await APIFixture.start()
        let h = try await f.startup()
        let s = try await f.openStream(h, Self.id)
        let uploader = try await startUpload(f, h, s, op: "u3")
        try await f.engine.setService(available: false)
        try await f.engine.setService(available: true)
        try await uploader.send("defghij")
        let answer = try await uploader.readResponse()
        #expect(answer.status == 200, "\(answer.text)")
        #expect(answer.json["state"] as? String == "failed")
        #expect(answer.json.resultCode == 4057)
        await f.stop()
    }

    /// A content-information read is served at once: 200 with its final state, never 202.
    @Test func readServedAtOnceAnswers200() async throws {
        let f = try await APIFixture.start()
        let h = try await f.startup()
        try await f.publish(h, Self.id, Array(repeating: 7, count: 1_000))
        let open = try await f.client.request("POST", "/instances/\(h)/content/\(Self.id)/contentinfo", json: "{}")
        let c = try #require(open.json["contentInfo"] as? String, "\(open.text)")
        let read = try await f.client.request("POST", "/instances/\(h)/content/\(Self.id)/contentinfo/\(c)/reads?maxBytes=50")
        #expect(read.status == 200, "\(read.text)")
        #expect(read.json["state"] as? String == "completed")
        #expect(read.json.resultCode == 0)
        await f.stop()
    }

    /// An operation held by a fault delay is still pending when answered: 202, state pending.
    @Test func pendingOperationAnswers202() async throws {
        let f = try await APIFixture.start()
        let h = try await f.startup()
        try await f.setFaults(#"{"completionDelayMs":60000,"kinds":["publishAddToStream"]}"#)
        let s = try await f.openStream(h, Self.id)
        let r = try await f.client.request("POST", "/instances/\(h)/content/\(Self.id)/streams/\(s)/data", body: [1, 2, 3])
        #expect(r.status == 202)
        #expect(r.json["state"] as? String == "pending")
        await f.stop()
    }

    /// Preference-Applied names the wait that was applied: the requested one capped by --max-wait.
    @Test func preferenceAppliedNamesTheCappedWait() async throws {
        let f = try await APIFixture.start(maxWaitMs: 1_000)
        let h = try await f.startup()
        try await f.setFaults(#"{"completionDelayMs":60000,"kinds":["publishAddToStream"]}"#)
        let s = try await f.openStream(h, Self.id)
        let started = ContinuousClock.now
        let r = try await f.client.request("POST", "/instances/\(h)/content/\(Self.id)/streams/\(s)/data", body: [1], headers: [("Prefer", "wait=30")])
        #expect(r.status == 202)
        #expect(r.header("Preference-Applied") == "wait=1")
        #expect(ContinuousClock.now - started < .seconds(20))
        await f.stop()
    }
}
