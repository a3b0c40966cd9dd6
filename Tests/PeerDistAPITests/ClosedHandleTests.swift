import Foundation
import ServerTesting
import Testing

/// API.md, Completion ports: an operation's final result stays readable at its resources for
/// `--retention`, also after the stream, content-information handle or port it belonged to was closed.
@Suite struct ClosedHandleTests {
    static let id = APIFixture.contentID("content-1")

    func expectCanceled(_ f: APIFixture, _ h: String, _ op: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let byContent = try await f.client.request("GET", "/instances/\(h)/content/\(Self.id)/operations/\(op)")
        #expect(byContent.status == 200, "\(byContent.text)", sourceLocation: sourceLocation)
        #expect(byContent.json["state"] as? String == "canceled", sourceLocation: sourceLocation)
        #expect(byContent.json.resultCode == 995, sourceLocation: sourceLocation)
        let byInstance = try await f.client.request("GET", "/instances/\(h)/operations/\(op)")
        #expect(byInstance.status == 200, "\(byInstance.text)", sourceLocation: sourceLocation)
        #expect(byInstance.json.resultCode == 995, sourceLocation: sourceLocation)
    }

    @Test func abortedAppendIsReadableAfterItsStreamClosed() async throws {
        let f = try await APIFixture.start()
        let h = try await f.startup()
        try await f.setFaults(#"{"completionDelayMs":60000,"kinds":["publishAddToStream"]}"#)
        let s = try await f.openStream(h, Self.id)
        let r = try await f.client.request("POST", "/instances/\(h)/content/\(Self.id)/streams/\(s)/data?op=a1", body: [1, 2, 3])
        #expect(r.status == 202)
        #expect(try await f.client.request("DELETE", "/instances/\(h)/content/\(Self.id)/streams/\(s)").status == 200)
        try await expectCanceled(f, h, "a1")
        await f.stop()
    }

    @Test func abortedReadIsReadableAfterItsContentInformationHandleClosed() async throws {
        let f = try await APIFixture.start()
        let h = try await f.startup()
        try await f.publish(h, Self.id, Array(repeating: 3, count: 500))
        let open = try await f.client.request("POST", "/instances/\(h)/content/\(Self.id)/contentinfo", json: "{}")
        let c = try #require(open.json["contentInfo"] as? String, "\(open.text)")
        try await f.setFaults(#"{"completionDelayMs":60000,"kinds":["retrieveContentInformation"]}"#)
        let read = try await f.client.request("POST", "/instances/\(h)/content/\(Self.id)/contentinfo/\(c)/reads?op=r1")
        #expect(read.status == 202, "\(read.text)")
        #expect(try await f.client.request("DELETE", "/instances/\(h)/content/\(Self.id)/contentinfo/\(c)").status == 200)
        try await expectCanceled(f, h, "r1")
        await f.stop()
    }

    @Test func operationIsReadableAfterItsPortClosed() async throws {
        let f = try await APIFixture.start()
        let h = try await f.startup()
        let port = try #require(try await f.client.request("POST", "/instances/\(h)/ports").json["port"] as? String)
        let open = try await f.client.request("POST", "/instances/\(h)/content/\(Self.id)/streams", json: #"{"port":"\#(port)"}"#)
        let s = try #require(open.json["stream"] as? String, "\(open.text)")
        try await f.setFaults(#"{"completionDelayMs":60000,"kinds":["publishAddToStream"]}"#)
        #expect(try await f.client.request("POST", "/instances/\(h)/content/\(Self.id)/streams/\(s)/data?op=p1", body: [1]).status == 202)
        #expect(try await f.client.request("DELETE", "/instances/\(h)/ports/\(port)").status == 200)
        #expect(try await f.client.request("DELETE", "/instances/\(h)/content/\(Self.id)/operations/p1").status == 200)
        try await expectCanceled(f, h, "p1")
        await f.stop()
    }
}
