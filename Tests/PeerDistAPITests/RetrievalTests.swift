import BlockCache
import Foundation
import HTTPServer
import Logging
import PCCRC
import PeerDistAPI
import PeerDistEngine
import ServerTesting
import Testing

/// A live server whose engine has a block cache in a temporary directory, with a published content
/// whose real MS-PCCRC content information (taken from GET …/contentinfo) retrievals use.
struct RetrievalFixture {
    let api: APIFixture
    let cache: BlockCache
    let cacheDirectory: String
    var client: RawHTTPClient { api.client }
    var engine: PeerDistEngine { api.engine }

    static func start(limits: EngineLimits = EngineLimits(), tokens: TokenTable? = nil, cacheBytes: Int64 = 64 << 20) async throws
        -> RetrievalFixture
    {
        let directory = NSTemporaryDirectory() + "peerdist-retrieval-\(UUID().uuidString)"
        let cache = try await BlockCache.open(BlockCacheConfiguration(directory: directory, capacityBytes: cacheBytes))
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let engine = PeerDistEngine(secret: ServerSecret(keyBytes: APIFixture.secret), limits: limits, blockCache: cache)
        let service = try PeerDistService(
            // Any Host, as `APIFixture.start` allows it: these raw requests name `Host: t`.
            settings: .init(dataDirectory: NSTemporaryDirectory(), tokens: tokens, allowedHosts: ["*"], limits: limits), engine: engine,
            lifecycle: ServiceLifecycle(), logger: logger)
        var configuration = ServerConfiguration()
        configuration.headerTimeout = .seconds(120)
        configuration.minBodyDataRate = 0
        configuration.maxBodySize = 4 << 20
        let server = try TestServer(router: service.router, configuration: configuration, observer: service,
                                    filters: service.filters, errorRenderer: service.errorRenderer)
        let api = APIFixture(server: server, engine: engine, client: try await server.client(), service: service)
        return RetrievalFixture(api: api, cache: cache, cacheDirectory: directory)
    }

    func stop() async {
        await api.stop()
        await cache.close()
        try? FileManager.default.removeItem(atPath: cacheDirectory)
    }

    /// Deterministic pseudo-random content.
    static func content(_ count: Int, seed: UInt64 = 7) -> [UInt8] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
    }

    /// Publishes `content` under `name` (V1 and V2) in instance `h` and returns its content
    /// information of `version`.
    func publish(_ h: String, _ name: String, _ content: [UInt8], version: Int = 1) async throws -> [UInt8] {
        let id = APIFixture.contentID(name)
        try await api.publish(h, id, content, streamJSON: #"{"version":2}"#)
        let info = try await client.request("GET", "/instances/\(h)/content/\(id)/contentinfo?version=\(version)")
        #expect(info.status == 200, "\(info.text)")
        return info.body
    }

    /// Opens a retrieval, adds `info` in two portions and completes it.
    func openCompleted(_ h: String, info: [UInt8], tag: String = String(repeating: "ab", count: 16), key: Int = 0,
                       port: String = "default", on client: RawHTTPClient? = nil) async throws -> String {
        let c = client ?? self.client
        let open = try await c.request("POST", "/instances/\(h)/retrievals", json: #"{"contentTag":"\#(tag)","key":\#(key),"port":"\#(port)"}"#)
        #expect(open.status == 201, "\(open.text)")
        let r = try #require(open.json["retrieval"] as? String)
        #expect(r.hasPrefix("retr_"))
        let half = info.count / 2
        for portion in [Array(info[..<half]), Array(info[half...])] {
            let add = try await c.request("POST", "/instances/\(h)/retrievals/\(r)/contentinfo", body: portion, headers: [("Prefer", "wait=10")])
            #expect(add.json["state"] as? String == "completed", "\(add.text)")
            #expect(add.json["bytesTransferred"] as? Int == portion.count)
        }
        let done = try await c.request("POST", "/instances/\(h)/retrievals/\(r)/contentinfo/complete", headers: [("Prefer", "wait=10")])
        #expect(done.json["state"] as? String == "completed", "\(done.text)")
        return r
    }

    /// AddData, waited for.
    @discardableResult
    func addData(_ h: String, _ r: String, offset: Int, _ bytes: [UInt8], on client: RawHTTPClient? = nil) async throws -> [String: Any] {
        let c = client ?? self.client
        let add = try await c.request("POST", "/instances/\(h)/retrievals/\(r)/data?offset=\(offset)", body: bytes, headers: [("Prefer", "wait=10")])
        #expect(add.status == 200, "\(add.text)")
        return add.json
    }

    /// A read; `timeoutMs` nil leaves it out (the 5 s default).
    func read(_ h: String, _ r: String, mode: String = "block", offset: Int? = 0, maxBytes: Int = 1 << 20, timeoutMs: Int? = 0,
              op: String? = nil, wait: Bool = true) async throws -> RawResponse {
        var members = [#""mode":"\#(mode)""#, #""maxBytes":\#(maxBytes)"#]
        if let offset { members.append(#""offset":\#(offset)"#) }
        if let timeoutMs { members.append(#""timeoutMs":\#(timeoutMs)"#) }
        let query = op.map { "?op=\($0)" } ?? ""
        return try await client.request("POST", "/instances/\(h)/retrievals/\(r)/reads\(query)", json: "{\(members.joined(separator: ","))}",
                                        headers: wait ? [("Prefer", "wait=10")] : [])
    }

    func buffer(_ h: String, _ r: String, _ op: String) async throws -> [UInt8] {
        let b = try await client.request("GET", "/instances/\(h)/retrievals/\(r)/operations/\(op)/buffer")
        #expect(b.status == 200, "\(b.text)")
        return b.body
    }

    /// Every completion queued on the port now.
    func drain(_ h: String, port: String = "default") async throws -> [[String: Any]] {
        let r = try await client.request("GET", "/instances/\(h)/ports/\(port)/completions?max=1024&timeoutMs=0")
        #expect(r.status == 200, "\(r.text)")
        return r.json["completions"] as? [[String: Any]] ?? []
    }
}

@Suite struct RetrievalTests {
    static let block = 65_536
    /// Four V1 blocks, the last one short.
    static let data = RetrievalFixture.content(3 * block + 8_000)

    @Test func missGivesTheExactRangeAndDataIsServedVerified() async throws {
        let f = try await RetrievalFixture.start()
        let h = try await f.api.startup()
        let info = try await f.publish(h, "c1", Self.data)
        let r = try await f.openCompleted(h, info: info)
        let length = Self.data.count

        // Nothing cached: the miss runs from the offset to the end of the content.
        var miss = try await f.read(h, r, offset: 70_000)
        #expect(miss.status == 200)
        #expect(miss.json.resultCode == 4052, "\(miss.text)")
        #expect(miss.json["offset"] as? Int == 70_000)
        #expect(miss.json["bytesTransferred"] as? Int == length - 70_000)
        #expect(miss.json["retrieval"] as? String == r)

        // Block 2 cached: the miss stops where it starts.
        let added = try await f.addData(h, r, offset: 2 * Self.block, Array(Self.data[(2 * Self.block)..<(3 * Self.block)]))
        #expect(added.resultCode == 0)
        #expect(added["bytesTransferred"] as? Int == Self.block)
        miss = try await f.read(h, r, offset: 70_000)
        #expect(miss.json.resultCode == 4052)
        #expect(miss.json["offset"] as? Int == 70_000)
        #expect(miss.json["bytesTransferred"] as? Int == 2 * Self.block - 70_000)

        // maxBytes 0: contiguous cached bytes at the offset (and none before block 2).
        let none = try await f.read(h, r, offset: 10, maxBytes: 0)
        #expect(none.json.resultCode == 0)
        #expect(none.json["bytesTransferred"] as? Int == 0)
        let some = try await f.read(h, r, offset: 2 * Self.block + 5, maxBytes: 0)
        #expect(some.json["bytesTransferred"] as? Int == Self.block - 5)

        // A hit inside the block: a partial read of what is there, verified bytes, offset where it started.
        let hit = try await f.read(h, r, offset: 2 * Self.block + 5, op: "hit1")
        #expect(hit.json.resultCode == 0, "\(hit.text)")
        #expect(hit.json["offset"] as? Int == 2 * Self.block + 5)
        #expect(hit.json["bytesTransferred"] as? Int == Self.block - 5)
        #expect(try await f.buffer(h, r, "hit1") == Array(Self.data[(2 * Self.block + 5)..<(3 * Self.block)]))
        // The same buffer at the instance level.
        let byInstance = try await f.client.request("GET", "/instances/\(h)/operations/hit1/buffer")
        #expect(byInstance.body == Array(Self.data[(2 * Self.block + 5)..<(3 * Self.block)]))

        // Past the end: 4053. AddData at the end: 4061. A piece straddling the end keeps the bytes up to it.
        #expect(try await f.read(h, r, offset: length).json.resultCode == 4053)
        let beyond = try await f.client.request("POST", "/instances/\(h)/retrievals/\(r)/data?offset=\(length)", body: [1, 2, 3], headers: [("Prefer", "wait=10")])
        #expect(beyond.json.resultCode == 4061, "\(beyond.text)")
        let tail = Array(Self.data[(3 * Self.block)...]) + [9, 9, 9, 9]
        let straddle = try await f.addData(h, r, offset: 3 * Self.block, tail)
        #expect(straddle.resultCode == 0)
        #expect(straddle["bytesTransferred"] as? Int == length - 3 * Self.block)
        let last = try await f.read(h, r, offset: 3 * Self.block, op: "last")
        #expect(last.json["bytesTransferred"] as? Int == length - 3 * Self.block)
        #expect(try await f.buffer(h, r, "last") == Array(Self.data[(3 * Self.block)...]))

        // Bytes that do not match the content information never enter the cache.
        var wrong = Array(Self.data[0..<Self.block])
        wrong[100] ^= 0xFF
        _ = try await f.addData(h, r, offset: 0, wrong)
        #expect(try await f.read(h, r, offset: 0).json.resultCode == 4052)
        #expect(f.cache.statistics().rejectedOnEntry == 1)
        await f.stop()
    }

    @Test func version2SegmentsAreStagedUntilWholeAndReadsWaitForCompletion() async throws {
        let f = try await RetrievalFixture.start()
        let h = try await f.api.startup()
        let content = RetrievalFixture.content(300_000, seed: 11)
        let info = try await f.publish(h, "v2", content, version: 2)
        let open = try await f.client.request("POST", "/instances/\(h)/retrievals", json: #"{"contentTag":"00112233445566778899aabbccddeeff"}"#)
        let r = try #require(open.json["retrieval"] as? String)
        // Reads are refused until the content information is complete.
        let early = try await f.read(h, r, offset: 0)
        #expect(early.status == 404)
        #expect(early.code == 4054)
        // Data before the content information is kept, then stored once it completes.
        _ = try await f.addData(h, r, offset: 0, Array(content[0..<1_000]))
        _ = try await f.client.request("POST", "/instances/\(h)/retrievals/\(r)/contentinfo", body: info, headers: [("Prefer", "wait=10")])
        let done = try await f.client.request("POST", "/instances/\(h)/retrievals/\(r)/contentinfo/complete", headers: [("Prefer", "wait=10")])
        #expect(done.json.resultCode == 0, "\(done.text)")
        let about = try await f.client.request("GET", "/instances/\(h)/retrievals/\(r)")
        #expect(about.json["flashCrowd"] as? Bool == false)
        #expect(about.json["version"] as? Int == 2)
        #expect(about.json["contentLength"] as? Int == content.count)
        // Still a miss: a V2 segment is verified only once whole.
        #expect(try await f.read(h, r, offset: 0).json.resultCode == 4052)
        _ = try await f.addData(h, r, offset: 1_000, Array(content[1_000..<150_000]))
        _ = try await f.addData(h, r, offset: 150_000, Array(content[150_000...]))
        var got: [UInt8] = []
        var offset = 0
        while offset < content.count {
            let read = try await f.read(h, r, offset: offset, op: "v2r")
            #expect(read.json.resultCode == 0, "\(read.text)")
            let n = try #require(read.json["bytesTransferred"] as? Int)
            #expect(n > 0)
            got += try await f.buffer(h, r, "v2r")
            offset += n
        }
        #expect(got == content)
        await f.stop()
    }

    @Test func aLargeAddDataStreamsIntoTheCacheWindowByWindow() async throws {
        let f = try await RetrievalFixture.start()
        let h = try await f.api.startup()
        for version in [1, 2] {
            let content = RetrievalFixture.content(3_000_000 + 123, seed: UInt64(version))
            let info = try await f.publish(h, "large\(version)", content, version: version)
            let r = try await f.openCompleted(h, info: info, tag: String(repeating: "0\(version)", count: 16))
            let added = try await f.addData(h, r, offset: 0, content)
            #expect(added.resultCode == 0, "\(added)")
            #expect(added["bytesTransferred"] as? Int == content.count)
            // Whole entries were inserted, none staged and left behind.
            #expect(f.cache.statistics().stagedBytes == 0)
            var got: [UInt8] = []
            while got.count < content.count {
                let read = try await f.read(h, r, offset: got.count, op: "big")
                #expect(read.json.resultCode == 0, "\(read.text)")
                let part = try await f.buffer(h, r, "big")
                #expect(!part.isEmpty)
                if part.isEmpty { break }
                got += part
            }
            #expect(got == content)
        }
        await f.stop()
    }

    /// An AddData reserves, of its principal's upload bytes in flight, its declared length at most
    /// what its feed may hold (`largestUploadReservation`): past the bound it is 429 with a retry
    /// hint, and the room comes back when it ends.
    @Test func addDataReservesItsPrincipalsUploadBytes() async throws {
        let held = EngineLimits().largestUploadReservation
        let f = try await RetrievalFixture.start(limits: EngineLimits(maxUploadBytesInFlightPerPrincipal: held + 1_000))
        let h = try await f.api.startup()
        let content = RetrievalFixture.content(2 * 65_536)
        let info = try await f.publish(h, "reserve", content)
        let r = try await f.openCompleted(h, info: info)
        // A long AddData whose body is not all sent yet: it reserves `held`.
        let slow = try await f.api.server.client()
        try await slow.send("POST /instances/\(h)/retrievals/\(r)/data?offset=0&op=long HTTP/1.1\r\nHost: t\r\n"
            + "Content-Type: application/octet-stream\r\nContent-Length: \(8 << 20)\r\n\r\n")
        try await slow.send(Array(content[0..<1000]))
        #expect(await eventually { (try? f.engine.operation(instance: h, operation: "long"))?.state == .pending })
        let over = try await f.client.request("POST", "/instances/\(h)/retrievals/\(r)/data?offset=0", body: Array(content[0..<2000]))
        #expect(over.status == 429, "\(over.text)")
        #expect(over.code == 1816)
        #expect(over.header("Retry-After") != nil)
        #expect(try await f.addData(h, r, offset: 0, Array(content[0..<500])).resultCode == 0)
        // The long one's client goes away: it ends, and its reservation with it.
        slow.close()
        #expect(await eventually { (try? f.engine.operation(instance: h, operation: "long")).map { $0.state != .pending } == true })
        #expect(try await f.addData(h, r, offset: 0, Array(content[0..<2000])).resultCode == 0)
        await f.stop()
    }

    /// Cancel in the middle of a streamed AddData whose windows are being stored: the operation
    /// ends once (995, posted once), what was stored reads back verified, nothing past what was
    /// sent is cached, and the stores still running finish into the cache without posting again.
    @Test func cancelInTheMiddleOfAStreamedAddDataEndsItOnce() async throws {
        let f = try await RetrievalFixture.start()
        let h = try await f.api.startup()
        let content = RetrievalFixture.content(4 << 20, seed: 11)
        let info = try await f.publish(h, "midcancel", content)
        let r = try await f.openCompleted(h, info: info)
        _ = try await f.drain(h)
        let sent = 5 << 19  // 2.5 MiB of 4: some windows stored, one gathering
        let slow = try await f.api.server.client()
        try await slow.send("POST /instances/\(h)/retrievals/\(r)/data?offset=0&op=mid HTTP/1.1\r\nHost: t\r\n"
            + "Content-Type: application/octet-stream\r\nContent-Length: \(content.count)\r\n\r\n")
        try await slow.send(Array(content[0..<sent]))
        #expect(await eventually { f.cache.statistics().entries >= 16 })
        let cancel = try await f.client.request("DELETE", "/instances/\(h)/retrievals/\(r)/operations/mid")
        #expect(cancel.status == 200, "\(cancel.text)")
        #expect(cancel.operation["state"] as? String == "canceled")
        let answer = try await slow.readResponse()
        #expect(answer.json["state"] as? String == "canceled", "\(answer.text)")
        slow.close()
        #expect(await eventually { f.engine.waitingReadCount == 0 })
        let posted = try await f.drain(h).filter { $0["operation"] as? String == "mid" }
        #expect(posted.count == 1)
        #expect(posted.first?.resultCode == 995)
        // Every block stored is one that was sent whole, and reads back as sent.
        let stored = Int(try await f.read(h, r, offset: 0, maxBytes: 0).json["bytesTransferred"] as? Int ?? -1)
        #expect(stored >= 16 * 65_536 && stored <= sent, "\(stored)")
        var got: [UInt8] = []
        while got.count < stored {
            #expect(try await f.read(h, r, offset: got.count, op: "rb").json.resultCode == 0)
            let part = try await f.buffer(h, r, "rb")
            if part.isEmpty { break }
            got += part
        }
        #expect(got == Array(content[0..<stored]))
        #expect(try await f.drain(h).filter { $0["operation"] as? String == "mid" }.isEmpty)
        await f.stop()
    }

    /// Unfetched read buffers are bounded per instance: past the bound the oldest are released;
    /// their operations keep their results, and their buffer answers 410 ERROR_CONTEXT_EXPIRED.
    @Test func readBuffersPastTheInstanceBoundAreReleasedOldestFirst() async throws {
        let f = try await RetrievalFixture.start(limits: EngineLimits(maxRetainedBufferBytesPerInstance: 2 << 20))
        let h = try await f.api.startup()
        let content = RetrievalFixture.content(3 << 20, seed: 12)
        let info = try await f.publish(h, "buffers", content)
        let r = try await f.openCompleted(h, info: info)
        #expect(try await f.addData(h, r, offset: 0, content).resultCode == 0)
        for i in 0..<3 { #expect(try await f.read(h, r, offset: i << 20, op: "b\(i)").json.resultCode == 0) }
        let gone = try await f.client.request("GET", "/instances/\(h)/retrievals/\(r)/operations/b0/buffer")
        #expect(gone.status == 410, "\(gone.text)")
        #expect(gone.code == 1931)
        let op = try await f.client.request("GET", "/instances/\(h)/retrievals/\(r)/operations/b0")
        #expect(op.json.resultCode == 0)
        #expect(op.json["bytesTransferred"] as? Int == 1 << 20)
        for i in 1..<3 { #expect(try await f.buffer(h, r, "b\(i)") == Array(content[(i << 20)..<((i + 1) << 20)])) }
        await f.stop()
    }

    /// A forgotten operation's buffer no longer counts against the bound (here forgotten because a
    /// new read takes its id).
    @Test func forgottenOperationsGiveTheirBufferBytesBack() async throws {
        let f = try await RetrievalFixture.start(limits: EngineLimits(maxRetainedBufferBytesPerInstance: 2 << 20))
        let h = try await f.api.startup()
        let content = RetrievalFixture.content(2 << 20, seed: 13)
        let info = try await f.publish(h, "forgotten", content)
        let r = try await f.openCompleted(h, info: info)
        #expect(try await f.addData(h, r, offset: 0, content).resultCode == 0)
        for _ in 0..<2 {
            for i in 0..<2 { #expect(try await f.read(h, r, offset: i << 20, op: "x\(i)").json.resultCode == 0) }
            for i in 0..<2 { #expect(try await f.buffer(h, r, "x\(i)") == Array(content[(i << 20)..<((i + 1) << 20)])) }
        }
        await f.stop()
    }

    @Test func rangedContentInformationConfinesReadsAndClipsMisses() async throws {
        let f = try await RetrievalFixture.start()
        let h = try await f.api.startup()
        _ = try await f.publish(h, "ranged", Self.data)
        let id = APIFixture.contentID("ranged")
        // The content information of [70,000, 170,000), through RetrieveContentInformation.
        let open = try await f.client.request("POST", "/instances/\(h)/content/\(id)/contentinfo", json: #"{"offset":70000,"length":100000,"maxVersion":1}"#)
        let c = try #require(open.json["contentInfo"] as? String, "\(open.text)")
        let part = try await f.client.request("POST", "/instances/\(h)/content/\(id)/contentinfo/\(c)/reads?maxBytes=1048576&op=ci", headers: [("Prefer", "wait=10")])
        #expect(part.json.resultCode == 0, "\(part.text)")
        let info = try await f.client.request("GET", "/instances/\(h)/content/\(id)/operations/ci/buffer").body
        let r = try await f.openCompleted(h, info: info)
        let about = try await f.client.request("GET", "/instances/\(h)/retrievals/\(r)")
        #expect(about.json["contentOffset"] as? Int == 70_000)
        #expect(about.json["contentLength"] as? Int == 100_000)
        #expect(about.json["streamPosition"] as? Int == 70_000)
        // Outside the range: 4053. A miss is clipped to the range.
        #expect(try await f.read(h, r, offset: 10).json.resultCode == 4053)
        #expect(try await f.read(h, r, offset: 170_000).json.resultCode == 4053)
        let miss = try await f.read(h, r, offset: 100_000)
        #expect(miss.json.resultCode == 4052)
        #expect(miss.json["offset"] as? Int == 100_000)
        #expect(miss.json["bytesTransferred"] as? Int == 70_000)
        // A V1 block split across two AddData calls is staged, then verified whole.
        _ = try await f.addData(h, r, offset: 0, Array(Self.data[0..<100_000]))
        // Block 1 (holding 70,000) is only staged: not readable yet.
        let staged = try await f.read(h, r, offset: 70_000, maxBytes: 0)
        #expect(staged.json.resultCode == 0)
        #expect(staged.json["bytesTransferred"] as? Int == 0)
        #expect(f.cache.statistics().stagedBytes > 0)
        _ = try await f.addData(h, r, offset: 100_000, Array(Self.data[100_000..<(3 * Self.block)]))
        #expect(f.cache.statistics().stagedBytes == 0)
        let stream = try await f.read(h, r, mode: "stream", offset: nil, op: "rs")
        #expect(stream.json.resultCode == 0, "\(stream.text)")
        #expect(stream.json["offset"] as? Int == 70_000)
        #expect(stream.json["bytesTransferred"] as? Int == 100_000)
        #expect(try await f.buffer(h, r, "rs") == Array(Self.data[70_000..<170_000]))
        #expect(try await f.read(h, r, mode: "stream", offset: nil).json.resultCode == 4053)
        await f.stop()
    }

    @Test func badContentInformationEndsCompleteWith4051Or4050() async throws {
        let f = try await RetrievalFixture.start()
        let h = try await f.api.startup()
        let info = try await f.publish(h, "bad", Self.data)
        for (bytes, code) in [(Array(info.dropLast(7)), 4051), ([0x00, 0x03] + Array(info.dropFirst(2)), 4050), ([], 4051)] {
            let open = try await f.client.request("POST", "/instances/\(h)/retrievals", json: #"{"contentTag":"000102030405060708090a0b0c0d0e0f"}"#)
            let r = try #require(open.json["retrieval"] as? String)
            if !bytes.isEmpty {
                _ = try await f.client.request("POST", "/instances/\(h)/retrievals/\(r)/contentinfo", body: bytes, headers: [("Prefer", "wait=10")])
            }
            let done = try await f.client.request("POST", "/instances/\(h)/retrievals/\(r)/contentinfo/complete", headers: [("Prefer", "wait=10")])
            #expect(done.json["state"] as? String == "failed")
            #expect(done.json.resultCode == code, "\(done.text)")
        }
        await f.stop()
    }

    @Test func streamReadsAdvanceByBytesReadAndByMissingRanges() async throws {
        let f = try await RetrievalFixture.start()
        let h = try await f.api.startup()
        let info = try await f.publish(h, "stream", Self.data)
        let r = try await f.openCompleted(h, info: info)
        _ = try await f.addData(h, r, offset: 0, Array(Self.data[0..<Self.block]))
        let first = try await f.read(h, r, mode: "stream", offset: nil)
        #expect(first.json.resultCode == 0)
        #expect(first.json["offset"] as? Int == 0)
        #expect(first.json["bytesTransferred"] as? Int == Self.block)
        let query = try await f.read(h, r, mode: "stream", offset: nil, maxBytes: 0)
        #expect(query.json.resultCode == 0)
        #expect(query.json["bytesTransferred"] as? Int == 0)
        let second = try await f.read(h, r, mode: "stream", offset: nil)
        #expect(second.json.resultCode == 4052)
        #expect(second.json["offset"] as? Int == Self.block)
        #expect(second.json["bytesTransferred"] as? Int == Self.data.count - Self.block)
        #expect(try await f.read(h, r, mode: "stream", offset: nil).json.resultCode == 4053)
        let about = try await f.client.request("GET", "/instances/\(h)/retrievals/\(r)")
        #expect(about.json["streamPosition"] as? Int == Self.data.count)
        await f.stop()
    }

    @Test func waitingReadIsWokenByAddDataAndPostsOnce() async throws {
        let f = try await RetrievalFixture.start()
        let h = try await f.api.startup()
        let info = try await f.publish(h, "wake", Self.data)
        let r = try await f.openCompleted(h, info: info, key: 42)
        _ = try await f.drain(h)
        let pending = try await f.read(h, r, offset: Self.block + 1, timeoutMs: 30_000, op: "w", wait: false)
        #expect(pending.status == 202)
        #expect(pending.json.resultCode == 996)
        #expect(await eventually { f.engine.waitingReadCount == 1 })
        let waiter = try await f.api.newClient()
        try await waiter.send("GET /instances/\(h)/retrievals/\(r)/operations/w?timeoutMs=20000 HTTP/1.1\r\nHost: t\r\n\r\n")
        let start = ContinuousClock.now
        _ = try await f.addData(h, r, offset: Self.block, Array(Self.data[Self.block..<(2 * Self.block)]))
        let woken = try await waiter.readResponse()
        #expect(ContinuousClock.now - start < .seconds(5))
        #expect(woken.json["state"] as? String == "completed", "\(woken.text)")
        #expect(woken.json["offset"] as? Int == Self.block + 1)
        #expect(woken.json["bytesTransferred"] as? Int == Self.block - 1)
        #expect(try await f.buffer(h, r, "w") == Array(Self.data[(Self.block + 1)..<(2 * Self.block)]))
        let posted = try await f.drain(h).filter { $0["operation"] as? String == "w" }
        #expect(posted.count == 1)
        #expect(posted.first?["key"] as? Int == 42)
        #expect(posted.first?["kind"] as? String == "clientBlockRead")
        #expect(f.engine.waitingReadCount == 0)
        await f.stop()
    }

    @Test func readTimesOutWith1460AndTheMissingRange() async throws {
        let f = try await RetrievalFixture.start()
        let h = try await f.api.startup()
        let info = try await f.publish(h, "timeout", Self.data)
        let r = try await f.openCompleted(h, info: info)
        _ = try await f.addData(h, r, offset: 2 * Self.block, Array(Self.data[(2 * Self.block)..<(3 * Self.block)]))
        let read = try await f.read(h, r, offset: 100, timeoutMs: 200)
        #expect(read.json.resultCode == 1460, "\(read.text)")
        #expect(read.json["offset"] as? Int == 100)
        #expect(read.json["bytesTransferred"] as? Int == 2 * Self.block - 100)
        await f.stop()
    }

    @Test func cancelOfAWaitingReadPostsOnceAndASecondCancelIs4059() async throws {
        let f = try await RetrievalFixture.start()
        let h = try await f.api.startup()
        let info = try await f.publish(h, "cancel", Self.data)
        let r = try await f.openCompleted(h, info: info)
        _ = try await f.drain(h)
        #expect(try await f.read(h, r, offset: 0, timeoutMs: 30_000, op: "c1", wait: false).status == 202)
        #expect(await eventually { f.engine.waitingReadCount == 1 })
        let cancel = try await f.client.request("DELETE", "/instances/\(h)/retrievals/\(r)/operations/c1")
        #expect(cancel.status == 200, "\(cancel.text)")
        #expect((cancel.json["lastError"] as? [String: Any])?["code"] as? Int == 995)
        #expect(cancel.operation["state"] as? String == "canceled")
        // Posted before the DELETE answered.
        let posted = try await f.drain(h).filter { $0["operation"] as? String == "c1" }
        #expect(posted.count == 1)
        #expect(posted.first?.resultCode == 995)
        let again = try await f.client.request("DELETE", "/instances/\(h)/retrievals/\(r)/operations/c1")
        #expect(again.status == 404)
        #expect(again.code == 4059)
        // Data arriving later posts nothing more.
        _ = try await f.addData(h, r, offset: 0, Array(Self.data[0..<Self.block]))
        #expect(try await f.drain(h).filter { $0["operation"] as? String == "c1" }.isEmpty)
        #expect(try await f.client.request("GET", "/instances/\(h)/operations/c1").json.resultCode == 995)
        #expect(await eventually { f.engine.waitingReadCount == 0 })
        await f.stop()
    }

    @Test func cancelAllEndsEveryPendingOperationOfTheRetrieval() async throws {
        let f = try await RetrievalFixture.start()
        let h = try await f.api.startup()
        let info = try await f.publish(h, "all", Self.data)
        let r = try await f.openCompleted(h, info: info)
        let other = try await f.openCompleted(h, info: info, tag: String(repeating: "cd", count: 16))
        _ = try await f.drain(h)
        for (op, offset) in [("a1", 0), ("a2", Self.block)] {
            #expect(try await f.read(h, r, offset: offset, timeoutMs: 30_000, op: op, wait: false).status == 202)
        }
        #expect(try await f.read(h, r, mode: "stream", offset: nil, timeoutMs: 30_000, op: "a3", wait: false).status == 202)
        #expect(try await f.read(h, other, offset: 0, timeoutMs: 30_000, op: "keep", wait: false).status == 202)
        #expect(await eventually { f.engine.waitingReadCount == 4 })
        let all = try await f.client.request("DELETE", "/instances/\(h)/retrievals/\(r)/operations")
        #expect(all.status == 200, "\(all.text)")
        let ids = Set((all.json["operations"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String })
        #expect(ids == ["a1", "a2", "a3"])
        let posted = try await f.drain(h)
        #expect(posted.count == 3)
        #expect(posted.allSatisfy { $0.resultCode == 995 })
        // The other retrieval's read is untouched.
        let kept = try await f.client.request("GET", "/instances/\(h)/retrievals/\(other)/operations/keep")
        #expect(kept.json["state"] as? String == "pending")
        await f.stop()
    }

    @Test func closeAbortsPendingReadsThenTheHandleIsGone() async throws {
        let f = try await RetrievalFixture.start()
        let h = try await f.api.startup()
        let info = try await f.publish(h, "close", Self.data)
        let r = try await f.openCompleted(h, info: info)
        _ = try await f.drain(h)
        #expect(try await f.read(h, r, offset: 0, timeoutMs: 30_000, op: "x1", wait: false).status == 202)
        #expect(try await f.read(h, r, mode: "stream", offset: nil, timeoutMs: 30_000, op: "x2", wait: false).status == 202)
        #expect(try await f.read(h, r, mode: "stream", offset: nil, timeoutMs: 30_000, op: "x3", wait: false).status == 202)
        let close = try await f.client.request("DELETE", "/instances/\(h)/retrievals/\(r)")
        #expect(close.status == 200)
        let posted = try await f.drain(h)
        #expect(Set(posted.compactMap { $0["operation"] as? String }) == ["x1", "x2", "x3"])
        #expect(posted.count == 3)
        #expect(posted.allSatisfy { $0.resultCode == 995 })
        // The operations stay readable (and a cancel is 4059); any other call is 404 ERROR_INVALID_HANDLE.
        #expect(try await f.client.request("GET", "/instances/\(h)/retrievals/\(r)/operations/x1").json["state"] as? String == "canceled")
        #expect(try await f.client.request("DELETE", "/instances/\(h)/retrievals/\(r)/operations/x1").code == 4059)
        #expect(try await f.read(h, r, offset: 0).code == 6)
        #expect(try await f.client.request("GET", "/instances/\(h)/retrievals/\(r)").code == 6)
        #expect(await eventually { f.engine.waitingReadCount == 0 })
        await f.stop()
    }

    @Test func bytesFlippedOnDiskAreAMissNeverServedAndCounted() async throws {
        let f = try await RetrievalFixture.start()
        let h = try await f.api.startup()
        let info = try await f.publish(h, "corrupt", Self.data)
        let r = try await f.openCompleted(h, info: info)
        _ = try await f.addData(h, r, offset: 0, Array(Self.data[0..<Self.block]))
        #expect(try await f.read(h, r, offset: 0, maxBytes: 16).json.resultCode == 0)
        // Flip one byte of every stored entry, on disk.
        let stored = await f.cache.locations()
        #expect(stored.count == 1)
        for entry in stored {
            let handle = try #require(FileHandle(forUpdatingAtPath: entry.path))
            try handle.seek(toOffset: UInt64(entry.offset + entry.length / 2))
            let byte = try #require(try handle.read(upToCount: 1))
            try handle.seek(toOffset: UInt64(entry.offset + entry.length / 2))
            try handle.write(contentsOf: Data([byte[0] ^ 0x5A]))
            try handle.close()
        }
        let before = f.cache.statistics().corruptOnRead
        let read = try await f.read(h, r, offset: 0, op: "bad")
        #expect(read.json.resultCode == 4052, "\(read.text)")
        #expect(read.json["offset"] as? Int == 0)
        #expect(read.json["bytesTransferred"] as? Int == Self.data.count)
        #expect(f.cache.statistics().corruptOnRead == before + 1)
        let buffer = try await f.client.request("GET", "/instances/\(h)/retrievals/\(r)/operations/bad/buffer")
        #expect(buffer.status != 200)
        await f.stop()
    }

    @Test func theCacheIsSharedBetweenInstances() async throws {
        let f = try await RetrievalFixture.start()
        let a = try await f.api.startup()
        let b = try await f.api.startup()
        let info = try await f.publish(a, "shared", Self.data)
        let ra = try await f.openCompleted(a, info: info)
        let rb = try await f.openCompleted(b, info: info, tag: String(repeating: "ef", count: 16))
        // Instance b's read waits; instance a's AddData wakes it.
        #expect(try await f.read(b, rb, offset: 0, timeoutMs: 30_000, op: "sb", wait: false).status == 202)
        #expect(await eventually { f.engine.waitingReadCount == 1 })
        _ = try await f.addData(a, ra, offset: 0, Array(Self.data[0..<Self.block]))
        let woken = try await f.client.request("GET", "/instances/\(b)/retrievals/\(rb)/operations/sb?timeoutMs=10000")
        #expect(woken.json["state"] as? String == "completed", "\(woken.text)")
        #expect(try await f.buffer(b, rb, "sb") == Array(Self.data[0..<Self.block]))
        // And from the cache alone.
        _ = try await f.addData(a, ra, offset: Self.block, Array(Self.data[Self.block..<(2 * Self.block)]))
        let local = try await f.read(b, rb, offset: Self.block, timeoutMs: 0)
        #expect(local.json.resultCode == 0)
        #expect(local.json["bytesTransferred"] as? Int == Self.block)
        // Stored once.
        #expect(f.cache.statistics().entries == 2)
        await f.stop()
    }

    @Test func flushRemovesExactlyWhatWasAddedUnderItsTag() async throws {
        let f = try await RetrievalFixture.start()
        let h = try await f.api.startup()
        let info = try await f.publish(h, "flush", Self.data)
        let tag1 = String(repeating: "11", count: 16)
        let tag2 = String(repeating: "22", count: 16)
        let r1 = try await f.openCompleted(h, info: info, tag: tag1)
        let r2 = try await f.openCompleted(h, info: info, tag: tag2)
        _ = try await f.addData(h, r1, offset: 0, Array(Self.data[0..<Self.block]))
        _ = try await f.addData(h, r2, offset: Self.block, Array(Self.data[Self.block..<(2 * Self.block)]))
        #expect(f.cache.statistics().entries == 2)
        let flush = try await f.client.request("POST", "/instances/\(h)/flushes?op=fl", json: #"{"contentTag":"\#(tag1)","key":5}"#, headers: [("Prefer", "wait=10")])
        #expect(flush.status == 200, "\(flush.text)")
        #expect(flush.json.resultCode == 0)
        #expect(flush.json["kind"] as? String == "clientFlushContent")
        #expect(flush.json["bytesTransferred"] as? Int == 1)
        #expect(f.cache.statistics().entries == 1)
        #expect(try await f.read(h, r1, offset: 0).json.resultCode == 4052)
        #expect(try await f.read(h, r1, offset: Self.block).json.resultCode == 0)
        #expect(try await f.client.request("GET", "/instances/\(h)/operations/fl").json["state"] as? String == "completed")
        await f.stop()
    }

    @Test func invalidationEndsPendingReadsWith4057() async throws {
        let f = try await RetrievalFixture.start()
        let h = try await f.api.startup()
        let info = try await f.publish(h, "inval", Self.data)
        let r = try await f.openCompleted(h, info: info)
        #expect(try await f.read(h, r, offset: 0, timeoutMs: 30_000, op: "i1", wait: false).status == 202)
        #expect(try await f.client.request("PUT", "/admin/service", json: #"{"available":false}"#).status == 200)
        #expect(try await f.client.request("PUT", "/admin/service", json: #"{"available":true}"#).status == 200)
        let op = try await f.client.request("GET", "/instances/\(h)/retrievals/\(r)/operations/i1")
        #expect(op.json.resultCode == 4057, "\(op.text)")
        let later = try await f.read(h, r, offset: 0)
        #expect(later.status == 410)
        #expect(later.code == 4057)
        #expect(try await f.client.request("DELETE", "/instances/\(h)/retrievals/\(r)").status == 200)
        await f.stop()
    }

    @Test func faultDelayHoldsClientOperationsSoCancelWins() async throws {
        let f = try await RetrievalFixture.start()
        let h = try await f.api.startup()
        let info = try await f.publish(h, "fault", Self.data)
        let r = try await f.openCompleted(h, info: info)
        try await f.api.setFaults(#"{"completionDelayMs":60000,"kinds":["clientAddData"]}"#)
        let add = try await f.client.request("POST", "/instances/\(h)/retrievals/\(r)/data?offset=0&op=d1", body: Array(Self.data[0..<Self.block]))
        #expect(add.status == 202)
        let cancel = try await f.client.request("DELETE", "/instances/\(h)/retrievals/\(r)/operations/d1")
        #expect(cancel.operation["state"] as? String == "canceled")
        try await f.api.setFaults("{}")
        await f.stop()
    }

    @Test func shutdownAbortsPendingReadsAndTheirWaits() async throws {
        let f = try await RetrievalFixture.start()
        let keep = try await f.api.startup()
        let h = try await f.api.startup()
        let info = try await f.publish(keep, "shutdown", Self.data)
        let r = try await f.openCompleted(h, info: info)
        #expect(try await f.read(h, r, offset: 0, timeoutMs: 30_000, op: "s1", wait: false).status == 202)
        #expect(await eventually { f.engine.waitingReadCount == 1 })
        let waiter = try await f.api.newClient()
        try await waiter.send("GET /instances/\(h)/retrievals/\(r)/operations/s1?timeoutMs=20000 HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(await eventually { f.engine.usage(of: AccessControl.anonymousPrincipal).parkedWaiters == 1 })
        #expect(try await f.client.request("DELETE", "/instances/\(h)").status == 200)
        // The waiter was woken with the aborted operation before the shutdown answered.
        let woken = try await waiter.readResponse()
        #expect(woken.status == 200, "\(woken.text)")
        #expect(woken.json["state"] as? String == "canceled")
        #expect(woken.json.resultCode == 995)
        #expect(await eventually { f.engine.waitingReadCount == 0 })
        #expect(try await f.read(h, r, offset: 0).code == 6)
        await f.stop()
    }

    @Test func contentInformationCallsInTheWrongStateAndPastTheirBounds() async throws {
        var limits = EngineLimits()
        limits.maxRetrievalContentInfoBytes = 1_000
        limits.maxRetrievalPendingDataBytes = 100
        limits.maxRetrievalsPerInstance = 2
        let f = try await RetrievalFixture.start(limits: limits)
        let h = try await f.api.startup()
        let info = try await f.publish(h, "bounds", Self.data)
        #expect(info.count < 1_000)
        let r = try await f.openCompleted(h, info: info)
        // After completion: another portion is 4055, another complete 4060.
        let more = try await f.client.request("POST", "/instances/\(h)/retrievals/\(r)/contentinfo", body: [1])
        #expect(more.status == 409)
        #expect(more.code == 4055)
        let again = try await f.client.request("POST", "/instances/\(h)/retrievals/\(r)/contentinfo/complete")
        #expect(again.status == 409)
        #expect(again.code == 4060)
        let open = try await f.client.request("POST", "/instances/\(h)/retrievals", json: #"{"contentTag":"000102030405060708090a0b0c0d0e0f"}"#)
        let r2 = try #require(open.json["retrieval"] as? String)
        // Past the content information bound: 413, nothing added.
        let big = try await f.client.request("POST", "/instances/\(h)/retrievals/\(r2)/contentinfo", body: [UInt8](repeating: 0, count: 1_001))
        #expect(big.status == 413)
        #expect(big.code == 87)
        let about = try await f.client.request("GET", "/instances/\(h)/retrievals/\(r2)")
        #expect(about.json["contentInfoBytes"] as? Int == 0)
        #expect(about.json["contentInfoState"] as? String == "collecting")
        // Data kept before the content information is complete is bounded: 429.
        _ = try await f.addData(h, r2, offset: 0, [UInt8](repeating: 1, count: 100))
        let over = try await f.client.request("POST", "/instances/\(h)/retrievals/\(r2)/data?offset=100", body: [1])
        #expect(over.status == 429)
        #expect(over.code == 1816)
        // The instance's retrieval bound.
        let third = try await f.client.request("POST", "/instances/\(h)/retrievals", json: #"{"contentTag":"000102030405060708090a0b0c0d0e0f"}"#)
        #expect(third.status == 429)
        // Malformed parameters.
        #expect(try await f.client.request("POST", "/instances/\(h)/retrievals", json: #"{"contentTag":"xyz"}"#).status == 400)
        #expect(try await f.client.request("POST", "/instances/\(h)/retrievals/\(r)/data", body: [1]).status == 400)
        #expect(try await f.client.request("POST", "/instances/\(h)/retrievals/\(r)/reads", json: #"{"mode":"block"}"#).status == 400)
        #expect(try await f.client.request("POST", "/instances/\(h)/retrievals/\(r)/reads", json: #"{"mode":"stream","offset":3}"#).status == 400)
        #expect(try await f.client.request("POST", "/instances/\(h)/retrievals/\(r)/reads", json: #"{"mode":"block","offset":0,"timeoutMs":-1}"#).status == 400)
        #expect(try await f.client.request("POST", "/instances/\(h)/retrievals/retr_nope/reads", json: #"{"mode":"block","offset":0}"#).code == 6)
        await f.stop()
    }

    @Test func flushesAndReadsAreHeldByFaultsToo() async throws {
        let f = try await RetrievalFixture.start()
        let h = try await f.api.startup()
        let info = try await f.publish(h, "faults", Self.data)
        let r = try await f.openCompleted(h, info: info)
        try await f.api.setFaults(#"{"completionDelayMs":60000,"kinds":["clientBlockRead","clientFlushContent","clientAddContentInformation"]}"#)
        let read = try await f.read(h, r, offset: 0, timeoutMs: 0, op: "fr", wait: false)
        #expect(read.status == 202)
        #expect(read.json["state"] as? String == "pending")
        let flush = try await f.client.request("POST", "/instances/\(h)/flushes?op=ff", json: #"{"contentTag":"\#(String(repeating: "ab", count: 16))"}"#)
        #expect(flush.status == 202)
        let cancel = try await f.client.request("DELETE", "/instances/\(h)/retrievals/\(r)/operations/fr")
        #expect(cancel.operation["state"] as? String == "canceled")
        try await f.api.setFaults("{}")
        await f.stop()
    }

    /// Cancel against the AddData that wakes the same read, over HTTP, many times: every read ends
    /// exactly once (one completion on the port), canceled or completed.
    @Test func cancelRacesAddDataWakingTheSameRead() async throws {
        let f = try await RetrievalFixture.start()
        let h = try await f.api.startup()
        let info = try await f.publish(h, "race", Self.data)
        let tag = String(repeating: "77", count: 16)
        let r = try await f.openCompleted(h, info: info, tag: tag)
        let canceller = try await f.api.newClient()
        let adder = try await f.api.newClient()
        _ = try await f.drain(h)
        var outcomes: [String: Int] = [:]
        let block = Array(Self.data[0..<Self.block])
        for i in 0..<200 {
            let op = "race\(i)"
            #expect(try await f.read(h, r, offset: 0, timeoutMs: 30_000, op: op, wait: false).status == 202)
            #expect(await eventually { f.engine.waitingReadCount == 1 })
            // The cancel leaves 0 to 3 ms after the AddData, so that either may win.
            let lag = Duration.microseconds(Int.random(in: 0...3_000))
            async let add = adder.request("POST", "/instances/\(h)/retrievals/\(r)/data?offset=0", body: block, headers: [("Prefer", "wait=10")])
            async let cancel: RawResponse = {
                try await Task.sleep(for: lag)
                return try await canceller.request("DELETE", "/instances/\(h)/retrievals/\(r)/operations/\(op)")
            }()
            let (c, a) = try await (cancel, add)
            #expect(c.status == 200 || c.code == 4059, "\(c.text)")
            #expect(a.json.resultCode == 0, "\(a.text)")
            let final = try await f.client.request("GET", "/instances/\(h)/retrievals/\(r)/operations/\(op)?timeoutMs=10000")
            let state = try #require(final.json["state"] as? String)
            #expect(state == "canceled" || state == "completed")
            #expect((c.status == 200) == (state == "canceled"))
            let posted = try await f.drain(h).filter { $0["operation"] as? String == op }
            #expect(posted.count == 1, "\(op): \(posted)")
            outcomes[state, default: 0] += 1
            // Take the block out again for the next round.
            let flush = try await f.client.request("POST", "/instances/\(h)/flushes", json: #"{"contentTag":"\#(tag)"}"#, headers: [("Prefer", "wait=10")])
            #expect(flush.json.resultCode == 0)
            _ = try await f.drain(h)
            #expect(await eventually { f.engine.waitingReadCount == 0 })
        }
        print("retrieval race: \(outcomes)")
        #expect(outcomes.values.reduce(0, +) == 200)
        await f.stop()
    }
    /// A read's timeout against the AddData that wakes it, many times: each read ends exactly once,
    /// with the bytes or with 1460 and the missing range.
    @Test func timeoutRacesAddDataWakingTheSameRead() async throws {
        let f = try await RetrievalFixture.start()
        let h = try await f.api.startup()
        let info = try await f.publish(h, "timeout-race", Self.data)
        let tag = String(repeating: "78", count: 16)
        let r = try await f.openCompleted(h, info: info, tag: tag)
        let adder = try await f.api.newClient()
        _ = try await f.drain(h)
        var outcomes: [Int: Int] = [:]
        let block = Array(Self.data[0..<Self.block])
        for i in 0..<150 {
            let op = "tr\(i)"
            #expect(try await f.read(h, r, offset: 0, timeoutMs: Int.random(in: 1...4), op: op, wait: false).status != 400)
            let lag = Duration.microseconds(Int.random(in: 0...4_000))
            try await Task.sleep(for: lag)
            let a = try await adder.request("POST", "/instances/\(h)/retrievals/\(r)/data?offset=0", body: block, headers: [("Prefer", "wait=10")])
            #expect(a.json.resultCode == 0, "\(a.text)")
            let final = try await f.client.request("GET", "/instances/\(h)/retrievals/\(r)/operations/\(op)?timeoutMs=10000")
            let code = try #require(final.json.resultCode)
            #expect(code == 0 || code == 1460, "\(final.text)")
            if code == 1460 {
                #expect(final.json["offset"] as? Int == 0)
                #expect(final.json["bytesTransferred"] as? Int == Self.data.count)
            } else {
                #expect(final.json["bytesTransferred"] as? Int == Self.block)
            }
            let posted = try await f.drain(h).filter { $0["operation"] as? String == op }
            #expect(posted.count == 1, "\(op): \(posted)")
            #expect(posted.first?.resultCode == code)
            outcomes[code, default: 0] += 1
            let flush = try await f.client.request("POST", "/instances/\(h)/flushes", json: #"{"contentTag":"\#(tag)"}"#, headers: [("Prefer", "wait=10")])
            #expect(flush.json.resultCode == 0)
            _ = try await f.drain(h)
            #expect(await eventually { f.engine.waitingReadCount == 0 })
        }
        print("retrieval timeout race: \(outcomes)")
        await f.stop()
    }
}
