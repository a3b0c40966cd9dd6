import Foundation
import ServerTesting
import Testing

/// The daemon's block cache lives in its data directory and outlives the process.
@Suite(.serialized) struct RetrievalDaemonTests {
    static let content: [UInt8] = (0..<150_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 7) }

    /// Publishes the content (publications do not outlive the process, the secret does, so the
    /// content information is the same every time) and opens a completed retrieval on it.
    func retrieval(_ c: RawHTTPClient) async throws -> (instance: String, retrieval: String) {
        let h = try #require(try await c.request("POST", "/instances", json: "{}").json["handle"] as? String)
        let s = try #require(try await c.request("POST", "/instances/\(h)/content/Y2FjaGU/streams", json: #"{"version":1}"#).json["stream"] as? String)
        _ = try await c.request("POST", "/instances/\(h)/content/Y2FjaGU/streams/\(s)/data", body: Self.content, headers: [("Prefer", "wait=10")])
        _ = try await c.request("POST", "/instances/\(h)/content/Y2FjaGU/streams/\(s)/complete", headers: [("Prefer", "wait=10")])
        let info = try await c.request("GET", "/instances/\(h)/content/Y2FjaGU/contentinfo?version=1")
        #expect(info.status == 200)
        let open = try await c.request("POST", "/instances/\(h)/retrievals", json: #"{"contentTag":"0123456789abcdef0123456789abcdef"}"#)
        let r = try #require(open.json["retrieval"] as? String, "\(open.text)")
        _ = try await c.request("POST", "/instances/\(h)/retrievals/\(r)/contentinfo", body: info.body, headers: [("Prefer", "wait=10")])
        let done = try await c.request("POST", "/instances/\(h)/retrievals/\(r)/contentinfo/complete", headers: [("Prefer", "wait=10")])
        #expect((done.json["result"] as? [String: Any])?["code"] as? Int == 0, "\(done.text)")
        return (h, r)
    }

    @Test func theCacheSurvivesAKillAndARestart() async throws {
        let data = DaemonTests.tempDir()
        do {
            let d = try DaemonTests.Daemon(["--port", "0", "--data-dir", data])
            _ = await d.firstLine()
            let c = try await RawHTTPClient.connect(port: d.port)
            let (h, r) = try await retrieval(c)
            let miss = try await c.request("POST", "/instances/\(h)/retrievals/\(r)/reads", json: #"{"mode":"block","offset":0,"timeoutMs":0}"#, headers: [("Prefer", "wait=10")])
            #expect((miss.json["result"] as? [String: Any])?["code"] as? Int == 4052)
            let add = try await c.request("POST", "/instances/\(h)/retrievals/\(r)/data?offset=0", body: Self.content, headers: [("Prefer", "wait=10")])
            #expect((add.json["result"] as? [String: Any])?["code"] as? Int == 0, "\(add.text)")
            kill(d.process.processIdentifier, SIGKILL)
            _ = await d.waitExit()
        }
        let d = try DaemonTests.Daemon(["--port", "0", "--data-dir", data])
        _ = await d.firstLine()
        defer {
            kill(d.process.processIdentifier, SIGKILL)
            d.process.waitUntilExit()
        }
        let c = try await RawHTTPClient.connect(port: d.port)
        let (h, r) = try await retrieval(c)
        // From the local cache alone, after the restart.
        let count = try await c.request("POST", "/instances/\(h)/retrievals/\(r)/reads", json: #"{"mode":"block","offset":0,"maxBytes":0,"timeoutMs":0}"#, headers: [("Prefer", "wait=10")])
        #expect(count.json["bytesTransferred"] as? Int == Self.content.count, "\(count.text)")
        let read = try await c.request("POST", "/instances/\(h)/retrievals/\(r)/reads?op=after", json: #"{"mode":"block","offset":65536,"maxBytes":1048576,"timeoutMs":0}"#, headers: [("Prefer", "wait=10")])
        #expect((read.json["result"] as? [String: Any])?["code"] as? Int == 0, "\(read.text)")
        let buffer = try await c.request("GET", "/instances/\(h)/retrievals/\(r)/operations/after/buffer")
        #expect(buffer.body == Array(Self.content[65_536...]))
        #expect(FileManager.default.fileExists(atPath: data + "/cache"))
    }
}
