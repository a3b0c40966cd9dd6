import Foundation
import ServerTesting
import Testing

/// The daemon's block cache lives in its data directory and outlives the process.
@Suite(.serialized) struct RetrievalDaemonTests {
    static let content: [UInt8] = (0..<150_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 7) }

    /// Publishes the content (publications do not outlive the process, the secret does, so the
    /// content information is the same every time) and opens a completed retrieval on it.
    func retrieval(_ c: RawHTTPClient, content: [UInt8] = content) async throws -> (instance: String, retrieval: String) {
        let h = try #require(try await c.request("POST", "/instances", json: "{}").json["handle"] as? String)
        let s = try #require(try await c.request("POST", "/instances/\(h)/content/Y2FjaGU/streams", json: #"{"version":1}"#).json["stream"] as? String)
        _ = try await c.request("POST", "/instances/\(h)/content/Y2FjaGU/streams/\(s)/data", body: content, headers: [("Prefer", "wait=10")])
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

    /// A daemon on `arguments` that has printed its first line, and a client connected to it (the
    /// daemon is killed when the connection fails).
    private static func start(_ arguments: [String]) async throws -> (DaemonTests.Daemon, RawHTTPClient) {
        let d = try DaemonTests.Daemon(arguments)
        _ = await d.firstLine()
        do {
            return (d, try await RawHTTPClient.connect(port: d.port))
        } catch {
            kill(d.process.processIdentifier, SIGKILL)
            d.process.waitUntilExit()
            throw error
        }
    }

    @Test func theCacheSurvivesAKillAndARestart() async throws {
        let data = DaemonTests.tempDir()
        do {
            let (d, c) = try await Self.start(["--port", "0", "--data-dir", data])
            let (h, r) = try await retrieval(c)
            let miss = try await c.request("POST", "/instances/\(h)/retrievals/\(r)/reads", json: #"{"mode":"block","offset":0,"timeoutMs":0}"#, headers: [("Prefer", "wait=10")])
            #expect((miss.json["result"] as? [String: Any])?["code"] as? Int == 4052)
            let add = try await c.request("POST", "/instances/\(h)/retrievals/\(r)/data?offset=0", body: Self.content, headers: [("Prefer", "wait=10")])
            #expect((add.json["result"] as? [String: Any])?["code"] as? Int == 0, "\(add.text)")
            kill(d.process.processIdentifier, SIGKILL)
            _ = await d.waitExit()
        }
        let (d, c) = try await Self.start(["--port", "0", "--data-dir", data])
        defer {
            kill(d.process.processIdentifier, SIGKILL)
            d.process.waitUntilExit()
        }
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

    /// A kill -9 in the middle of a large AddData, its body half sent and part of it stored, then a
    /// restart on the same data directory: every block either misses or reads back exactly (the
    /// cache verifies it again on the way out), and what was stored before the kill is still there.
    @Test func aKillDuringALargeAddDataLeavesAConsistentCache() async throws {
        let blocks = 128  // 8 MiB: V1 blocks of 64 KiB
        let content: [UInt8] = (0..<(blocks * 65_536)).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ $0 >> 11) }
        let data = DaemonTests.tempDir()
        do {
            let (d, c) = try await Self.start(["--port", "0", "--data-dir", data])
            let (h, r) = try await retrieval(c, content: content)
            // The head and five eighths of the body; the rest never comes.
            let upload = try await RawHTTPClient.connect(port: d.port)
            try await upload.send("POST /instances/\(h)/retrievals/\(r)/data?offset=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                + "Content-Type: application/octet-stream\r\nContent-Length: \(content.count)\r\n\r\n")
            try await upload.send(Array(content[..<(blocks / 8 * 5 * 65_536)]))
            // Killed once part of it is in the cache (the AddData still pending).
            var stored = 0
            for _ in 0..<600 where stored < 1 << 20 {
                let count = try await c.request("POST", "/instances/\(h)/retrievals/\(r)/reads", json: #"{"mode":"block","offset":0,"maxBytes":0,"timeoutMs":0}"#, headers: [("Prefer", "wait=10")])
                stored = count.json["bytesTransferred"] as? Int ?? 0
                if stored < 1 << 20 { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(stored >= 1 << 20, "nothing was stored before the kill")
            kill(d.process.processIdentifier, SIGKILL)
            _ = await d.waitExit()
        }
        let (d, c) = try await Self.start(["--port", "0", "--data-dir", data])
        defer {
            kill(d.process.processIdentifier, SIGKILL)
            d.process.waitUntilExit()
        }
        let (h, r) = try await retrieval(c, content: content)
        var served = 0
        for block in 0..<blocks {
            let offset = block * 65_536
            let read = try await c.request("POST", "/instances/\(h)/retrievals/\(r)/reads?op=b\(block)",
                                           json: #"{"mode":"block","offset":\#(offset),"maxBytes":65536,"timeoutMs":0}"#, headers: [("Prefer", "wait=10")])
            let code = (read.json["result"] as? [String: Any])?["code"] as? Int
            #expect(code == 0 || code == 4052, "block \(block): \(read.text)")
            guard code == 0 else { continue }
            let buffer = try await c.request("GET", "/instances/\(h)/retrievals/\(r)/operations/b\(block)/buffer")
            #expect(buffer.body == Array(content[offset..<(offset + 65_536)]), "block \(block) read back other bytes")
            served += 1
        }
        // At least the first MiB seen stored before the kill survived it; nothing past what was sent.
        #expect(served >= 16)
        #expect(served <= blocks / 8 * 5)
    }

    /// `--cache-size` bounds the cache: AddData of twice the bound keeps the newest blocks within
    /// it, the oldest miss, and /metrics counts the evictions.
    @Test func theCacheSizeBoundsTheCacheByEvictingTheOldest() async throws {
        let content: [UInt8] = (0..<(8 * 65_536)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) }
        let (d, c) = try await Self.start(["--port", "0", "--data-dir", DaemonTests.tempDir(), "--cache-size", "262144"])
        defer {
            kill(d.process.processIdentifier, SIGKILL)
            d.process.waitUntilExit()
        }
        let (h, r) = try await retrieval(c, content: content)
        let add = try await c.request("POST", "/instances/\(h)/retrievals/\(r)/data?offset=0", body: content, headers: [("Prefer", "wait=10")])
        #expect((add.json["result"] as? [String: Any])?["code"] as? Int == 0, "\(add.text)")
        // maxBytes 0: the contiguous bytes cached from each block's start.
        var contiguous: [Int] = []
        for block in 0..<8 {
            let read = try await c.request("POST", "/instances/\(h)/retrievals/\(r)/reads",
                                           json: #"{"mode":"block","offset":\#(block * 65_536),"maxBytes":0,"timeoutMs":0}"#, headers: [("Prefer", "wait=10")])
            contiguous.append(read.json["bytesTransferred"] as? Int ?? -1)
        }
        #expect(contiguous == [0, 0, 0, 0, 4, 3, 2, 1].map { $0 * 65_536 }, "contiguous bytes per block: \(contiguous)")
        let metrics = try await c.request("GET", "/metrics").text
        func value(_ name: String) -> Double? {
            metrics.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
        }
        #expect(value("peerdist_cache_evictions_total") == 4, "\(metrics)")
        #expect(value("peerdist_cache_bytes") == 262_144)
        #expect(value("peerdist_cache_entries") == 4)
    }
}
