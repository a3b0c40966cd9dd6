import Foundation
import PeerDistEngine
import ServerTesting
import Testing

/// Routes that wait through `Prefer: wait` are interrupted by a drain like the long-polls, and then
/// answer properly (202 with the pending operation), never cut off; an upload in progress is not cut.
@Suite struct DrainWaitTests {
    static let id = APIFixture.contentID("content-1")

    func expectPendingAnswerOnDrain(kind: String, request: (APIFixture, String) async throws -> String) async throws {
        let f = try await APIFixture.start()
        let h = try await f.startup()
        let waiter = try await f.newClient()
        try await f.setFaults(#"{"completionDelayMs":60000,"kinds":["\#(kind)"]}"#)
        try await waiter.send(try await request(f, h))
        #expect(await eventually { f.engine.statistics().parkedWaiters == 1 })
        let started = ContinuousClock.now
        let stopping = Task { await f.stop() }
        let answer = try await waiter.readResponse(timeout: .seconds(20))
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(answer.status == 202, "\(kind): \(answer.text)")
        #expect(answer.json["state"] as? String == "pending")
        #expect(answer.json.resultCode == 996)
        #expect(answer.header("Preference-Applied") == "wait=30")
        waiter.close()
        await stopping.value
    }

    @Test func appendWaitAnswersPendingOnDrain() async throws {
        try await expectPendingAnswerOnDrain(kind: "publishAddToStream") { f, h in
            let s = try await f.openStream(h, Self.id)
            return "POST /instances/\(h)/content/\(Self.id)/streams/\(s)/data HTTP/1.1\r\nHost: t\r\nPrefer: wait=30\r\nContent-Length: 3\r\n\r\nabc"
        }
    }

    @Test func completeWaitAnswersPendingOnDrain() async throws {
        try await expectPendingAnswerOnDrain(kind: "publishCompleteStream") { f, h in
            let s = try await f.openStream(h, Self.id)
            return "POST /instances/\(h)/content/\(Self.id)/streams/\(s)/complete HTTP/1.1\r\nHost: t\r\nPrefer: wait=30\r\nContent-Length: 0\r\n\r\n"
        }
    }

    @Test func readWaitAnswersPendingOnDrain() async throws {
        try await expectPendingAnswerOnDrain(kind: "retrieveContentInformation") { f, h in
            try await f.publish(h, Self.id, Array(repeating: 5, count: 300))
            let open = try await f.client.request("POST", "/instances/\(h)/content/\(Self.id)/contentinfo", json: "{}")
            let c = try #require(open.json["contentInfo"] as? String, "\(open.text)")
            return "POST /instances/\(h)/content/\(Self.id)/contentinfo/\(c)/reads HTTP/1.1\r\nHost: t\r\nPrefer: wait=30\r\nContent-Length: 0\r\n\r\n"
        }
    }

    /// A drain that begins while an upload's body arrives lets it finish: its bytes are added.
    @Test func drainDoesNotCutAnUploadInProgress() async throws {
        let f = try await APIFixture.start()
        let h = try await f.startup()
        let s = try await f.openStream(h, Self.id)
        let uploader = try await f.newClient()
        try await uploader.send("POST /instances/\(h)/content/\(Self.id)/streams/\(s)/data?op=d1 HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        let contentId = Array("content-1".utf8)
        #expect(await eventually { (try? f.engine.operation(instance: h, contentId: contentId, operation: "d1")) != nil })
        let stopping = Task { await f.stop() }
        try await Task.sleep(for: .milliseconds(100))  // let the drain reach the connection first
        try await uploader.send("defghij")
        let answer = try await uploader.readResponse()
        let state = answer.json["state"] as? String
        #expect((answer.status == 200 && state == "completed") || (answer.status == 202 && state == "pending"), "\(answer.status) \(answer.text)")
        #expect(await eventually { (try? f.engine.operation(instance: h, contentId: contentId, operation: "d1"))?.state == .completed })
        #expect(try f.engine.operation(instance: h, contentId: contentId, operation: "d1").bytesTransferred == 10)
        uploader.close()
        await stopping.value
    }
}
