import BlockCache
import Crypto
import Foundation
import ServerTesting
import Testing

@Suite struct MetricsTests {
    /// The value of one sample line, e.g. `name{labels} 3`.
    static func sample(_ text: String, _ prefix: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(prefix) {
            return Double(line.split(separator: " ").last ?? "")
        }
        return nil
    }

    @Test func scrapeCountsTrafficCancelsAndHashing() async throws {
        let f = try await APIFixture.start()
        let h = try await f.startup()
        for _ in 0..<3 { #expect(try await f.client.request("GET", "/healthz").status == 200) }
        _ = try await f.client.request("GET", "/nowhere")
        let id = APIFixture.contentID("m")
        // One cancel that wins, one that loses the race, one for nothing.
        try await f.setFaults(#"{"completionDelayMs":60000,"kinds":["publishAddToStream"]}"#)
        let s = try await f.openStream(h, id)
        _ = try await f.client.request("POST", "/instances/\(h)/content/\(id)/streams/\(s)/data?op=held", body: Array(repeating: 1, count: 1_000))
        #expect(try await f.client.request("DELETE", "/instances/\(h)/content/\(id)/operations/held").status == 200)
        #expect(try await f.client.request("DELETE", "/instances/\(h)/content/\(id)/operations/held").code == 4059)
        #expect(try await f.client.request("DELETE", "/instances/\(h)/content/\(id)/operations/ghost").code == 4059)
        try await f.setFaults("{}")
        _ = try await f.client.request("POST", "/instances/\(h)/content/\(id)/streams/\(s)/data?op=kept", body: Array(repeating: 1, count: 2_000), headers: [("Prefer", "wait=5")])
        // A parked long-poll shows as a waiter while the scrape runs.
        let poller = try await f.newClient()
        try await poller.send("GET /instances/\(h)/ports/\(try await f.client.request("POST", "/instances/\(h)/ports").json["port"] as? String ?? "")/completions?timeoutMs=10000 HTTP/1.1\r\nHost: t\r\n\r\n")
        try await Task.sleep(for: .milliseconds(100))

        let scrape = try await f.client.request("GET", "/metrics")
        #expect(scrape.status == 200)
        #expect(scrape.header("Content-Type")?.hasPrefix("text/plain") == true)
        let text = scrape.text
        #expect(Self.sample(text, #"peerdist_http_requests_total{route="/healthz",method="GET",status="200",protocol="http/1.1"}"#) == 3)
        #expect(Self.sample(text, #"peerdist_http_requests_total{route="unmatched",method="GET",status="404",protocol="http/1.1"}"#) == 1)
        #expect(Self.sample(text, #"peerdist_cancels_total{outcome="canceled"}"#) == 1)
        #expect(Self.sample(text, #"peerdist_cancels_total{outcome="lost_race"}"#) == 1)
        #expect(Self.sample(text, #"peerdist_cancels_total{outcome="not_found"}"#) == 1)
        #expect(Self.sample(text, "peerdist_bytes_hashed_total") == 3_000)
        #expect(Self.sample(text, "peerdist_parked_waiters") == 1)
        #expect(Self.sample(text, "peerdist_http_open_connections") == 2)
        #expect(Self.sample(text, #"peerdist_http_request_duration_seconds_count{route="/healthz",method="GET"}"#) == 3)
        #expect(text.contains(#"peerdist_pending_operations{kind="publishAddToStream"} 0"#))
        await f.stop()
    }

    /// A malformed Accept-Encoding is ignored on HTTP/1.1 and HTTP/2 (identity, no 400) and
    /// counted in `peerdist_http_accept_encoding_ignored_total` (issue 23, item 2).
    @Test func malformedAcceptEncodingIsServedAndCounted() async throws {
        let f = try await APIFixture.start()
        for value in ["gzip;q=", "gzip;q=abc"] {
            let r = try await f.client.request("GET", "/openapi.yaml", headers: [("Accept-Encoding", value)])
            #expect(r.status == 200 && r.header("Content-Encoding") == nil, "\(value): \(r.status)")
        }
        let h2 = try await H2Client.connect(port: f.server.port)
        let r = try #require(try await h2.wait(for: [h2.submit("GET", "/openapi.yaml", headers: [("accept-encoding", "gzip;q=abc")])]).first)
        #expect(r.status == 200 && !r.headers.contains { $0.0 == "content-encoding" })
        h2.close()
        // A well-formed one is not counted.
        #expect(try await f.client.request("GET", "/healthz", headers: [("Accept-Encoding", "gzip")]).status == 200)
        // Counted once each answer is queued (HTTP/2's may lag its last frame a little).
        var counted: Double?
        for _ in 0..<50 {
            counted = Self.sample(try await f.client.request("GET", "/metrics").text, "peerdist_http_accept_encoding_ignored_total")
            if counted == 3 { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(counted == 3)
        await f.stop()
    }

    /// A real cache in a temporary folder, observed by the service: every series follows what
    /// the cache did, counted once across scrapes.
    @Test func scrapeReadsTheBlockCache() async throws {
        let dir = NSTemporaryDirectory() + "metrics-cache-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let block = 65_536
        let cache = try await BlockCache.open(BlockCacheConfiguration(directory: dir, capacityBytes: Int64(2 * block)))
        let blocks = (0..<3).map { n in (0..<block).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ n &* 7 &+ ($0 >> 8)) } }
        let digests = blocks.map { BlockDigest(.v1(.sha256), SHA256.hash(data: $0).withUnsafeBytes { Array($0) })! }
        let keys = (0..<3).map { BlockKey(segment: SegmentID([UInt8](repeating: 0x4D, count: 32))!, index: UInt32($0)) }
        // Counted before the cache is observed: still served.
        #expect(await cache.insert(keys[0], digest: digests[0], bytes: blocks[0], tag: nil, by: "p") == .stored)
        let f = try await APIFixture.start()
        f.service.metrics.observe(cache)
        #expect(await cache.insert(keys[1], digest: digests[1], bytes: blocks[1], tag: nil, by: "p") == .stored)
        // A third block at a bound of two evicts the least recently used (block 0).
        #expect(await cache.insert(keys[2], digest: digests[2], bytes: blocks[2], tag: nil, by: "p") == .stored)
        // Wrong bytes for a digest: refused on entry.
        #expect(await cache.insert(keys[0], digest: digests[0], bytes: blocks[1], tag: nil, by: "p") == .refused(.digestMismatch))
        #expect(await cache.read(keys[1], digest: digests[1]) == blocks[1])
        #expect(await cache.read(keys[0], digest: digests[0]) == nil)

        var text = try await f.client.request("GET", "/metrics").text
        #expect(Self.sample(text, "peerdist_cache_bytes") == Double(2 * block))
        #expect(Self.sample(text, "peerdist_cache_entries") == 2)
        #expect(Self.sample(text, "peerdist_cache_staged_bytes") == 0)
        #expect(Self.sample(text, "peerdist_cache_hits_total") == 1)
        #expect(Self.sample(text, "peerdist_cache_misses_total") == 1)
        #expect(Self.sample(text, "peerdist_cache_evictions_total") == 1)
        #expect(Self.sample(text, #"peerdist_cache_verification_failures_total{stage="entry"}"#) == 1)
        #expect(Self.sample(text, #"peerdist_cache_verification_failures_total{stage="read"}"#) == 0)

        // Bytes flipped on disk: the read misses, and the read-side failure counter moves.
        let stored = try #require(await cache.location(of: keys[2]))
        let handle = try #require(FileHandle(forUpdatingAtPath: stored.path))
        try handle.seek(toOffset: UInt64(stored.offset) + 100)
        let byte = try #require(try handle.read(upToCount: 1))
        try handle.seek(toOffset: UInt64(stored.offset) + 100)
        try handle.write(contentsOf: Data([byte[0] ^ 0xFF]))
        try handle.close()
        #expect(await cache.read(keys[2], digest: digests[2]) == nil)
        // A scrape between changes counts nothing twice.
        _ = try await f.client.request("GET", "/metrics")
        text = try await f.client.request("GET", "/metrics").text
        #expect(Self.sample(text, #"peerdist_cache_verification_failures_total{stage="read"}"#) == 1)
        #expect(Self.sample(text, "peerdist_cache_misses_total") == 2)
        #expect(Self.sample(text, "peerdist_cache_hits_total") == 1)
        #expect(Self.sample(text, "peerdist_cache_entries") == 1)
        #expect(Self.sample(text, "peerdist_cache_bytes") == Double(block))
        #expect(Self.sample(text, "peerdist_cache_evictions_total") == 1)
        await cache.close()
        await f.stop()
    }

    @Test func requestIDIsEchoedOrMade() async throws {
        let f = try await APIFixture.start()
        let given = try await f.client.request("GET", "/healthz", headers: [("X-Request-Id", "trace-42")])
        #expect(given.header("X-Request-Id") == "trace-42")
        let made = try await f.client.request("GET", "/healthz")
        let other = try await f.client.request("GET", "/healthz")
        #expect(made.header("X-Request-Id")?.isEmpty == false)
        #expect(made.header("X-Request-Id") != other.header("X-Request-Id"))
        await f.stop()
    }
}
