import Foundation
import PeerDistEngine
import ServerTesting
import Testing

/// Data that cannot fit is refused with 413 (code 87) from what is declared, before any byte is read.
@Suite struct RefusedEarlyTests {
    static let id = APIFixture.contentID("content-1")

    @Test func contentLengthAboveTheContentLimitIs413() async throws {
        let f = try await APIFixture.start(limits: EngineLimits(maxContentLength: 100))
        let h = try await f.startup()
        let r = try await f.client.request("POST", "/instances/\(h)/content/\(Self.id)/streams", json: #"{"contentLength":101}"#)
        #expect(r.status == 413, "\(r.text)")
        #expect(r.code == 87)
        #expect(r.header("Content-Type") == "application/problem+json")
        #expect(r.header("Retry-After") == nil)
        await f.stop()
    }

    /// The upload's head alone is answered: no body byte is sent.
    @Test func uploadLongerThanItsStreamCanTakeIs413FromItsHead() async throws {
        let f = try await APIFixture.start()
        let h = try await f.startup()
        let s = try await f.openStream(h, Self.id, length: 10)
        let first = try await f.client.request("POST", "/instances/\(h)/content/\(Self.id)/streams/\(s)/data",
                                               body: Array("abcdef".utf8), headers: [("Prefer", "wait=5")])
        #expect(first.json["state"] as? String == "completed", "\(first.text)")
        let uploader = try await f.newClient()
        try await uploader.send("POST /instances/\(h)/content/\(Self.id)/streams/\(s)/data HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n")
        let answer = try await uploader.readResponse()
        #expect(answer.status == 413, "\(answer.text)")
        #expect(answer.code == 87)
        uploader.close()
        // Nothing was added: the stream still takes its last 4 bytes and completes.
        let rest = try await f.client.request("POST", "/instances/\(h)/content/\(Self.id)/streams/\(s)/data",
                                              body: Array("ghij".utf8), headers: [("Prefer", "wait=5")])
        #expect(rest.json["state"] as? String == "completed", "\(rest.text)")
        let done = try await f.client.request("POST", "/instances/\(h)/content/\(Self.id)/streams/\(s)/complete", headers: [("Prefer", "wait=5")])
        #expect(done.json["state"] as? String == "completed", "\(done.text)")
        await f.stop()
    }

    /// On a stream of unknown length the bound is the content limit.
    @Test func uploadLongerThanTheContentLimitIs413FromItsHead() async throws {
        let f = try await APIFixture.start(limits: EngineLimits(maxContentLength: 100))
        let h = try await f.startup()
        let s = try await f.openStream(h, Self.id)
        let uploader = try await f.newClient()
        try await uploader.send("POST /instances/\(h)/content/\(Self.id)/streams/\(s)/data HTTP/1.1\r\nHost: t\r\nContent-Length: 101\r\n\r\n")
        let answer = try await uploader.readResponse()
        #expect(answer.status == 413, "\(answer.text)")
        #expect(answer.code == 87)
        uploader.close()
        await f.stop()
    }
}
