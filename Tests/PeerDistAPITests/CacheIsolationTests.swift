import BlockCache
import Crypto
import Foundation
import PCCRC
import PeerDistEngine
import ServerTesting
import Testing

/// One principal's calls over a connection of its own (issue 18, items 1 to 3).
struct Caller {
    let client: RawHTTPClient
    let token: String

    static func connect(_ f: RetrievalFixture, _ token: String) async throws -> Caller {
        Caller(client: try await f.api.newClient(), token: token)
    }

    func call(_ method: String, _ path: String, json: String? = nil, body: [UInt8]? = nil) async throws -> RawResponse {
        try await client.request(
            method, path, json: json, body: body, headers: [("Authorization", "Bearer \(token)"), ("Prefer", "wait=10")])
    }

    func startup() async throws -> String {
        let r = try await call("POST", "/instances", json: #"{"version":2}"#)
        #expect(r.status == 201, "\(r.text)")
        return try #require(r.json["handle"] as? String)
    }

    /// Publishes `content` and returns its content information of `version`.
    func publish(_ h: String, _ name: String, _ content: [UInt8], version: Int = 1) async throws -> [UInt8] {
        let id = APIFixture.contentID(name)
        let r = try await call("POST", "/instances/\(h)/content/\(id)/streams", json: #"{"version":2}"#)
        let s = try #require(r.json["stream"] as? String, "\(r.text)")
        #expect(try await call("POST", "/instances/\(h)/content/\(id)/streams/\(s)/data", body: content).json["state"] as? String == "completed")
        #expect(try await call("POST", "/instances/\(h)/content/\(id)/streams/\(s)/complete").json["state"] as? String == "completed")
        let info = try await call("GET", "/instances/\(h)/content/\(id)/contentinfo?version=\(version)")
        #expect(info.status == 200, "\(info.text)")
        return info.body
    }

    /// Opens a retrieval under `tag`, adds `info` and completes it; returns the handle and the
    /// complete operation's result code.
    func open(_ h: String, info: [UInt8], tag: String) async throws -> (String, Int?) {
        let open = try await call("POST", "/instances/\(h)/retrievals", json: #"{"contentTag":"\#(tag)"}"#)
        #expect(open.status == 201, "\(open.text)")
        let r = try #require(open.json["retrieval"] as? String)
        #expect(try await call("POST", "/instances/\(h)/retrievals/\(r)/contentinfo", body: info).json.resultCode == 0)
        let done = try await call("POST", "/instances/\(h)/retrievals/\(r)/contentinfo/complete")
        #expect(done.json["state"] as? String != "pending", "\(done.text)")
        return (r, done.json.resultCode)
    }

    func openCompleted(_ h: String, info: [UInt8], tag: String) async throws -> String {
        let (r, code) = try await open(h, info: info, tag: tag)
        #expect(code == 0)
        return r
    }

    @discardableResult
    func addData(_ h: String, _ r: String, offset: Int, _ bytes: [UInt8]) async throws -> [String: Any] {
        let add = try await call("POST", "/instances/\(h)/retrievals/\(r)/data?offset=\(offset)", body: bytes)
        #expect(add.status == 200, "\(add.text)")
        return add.json
    }

    /// A block read of the local cache only (timeoutMs 0).
    func read(_ h: String, _ r: String, offset: Int, maxBytes: Int = 1 << 20) async throws -> [String: Any] {
        let read = try await call(
            "POST", "/instances/\(h)/retrievals/\(r)/reads", json: #"{"mode":"block","offset":\#(offset),"maxBytes":\#(maxBytes),"timeoutMs":0}"#)
        #expect(read.status == 200, "\(read.text)")
        return read.json
    }

    /// The cached bytes from `offset` (a read with maxBytes 0).
    func cachedBytes(_ h: String, _ r: String, from offset: Int) async throws -> Int? {
        let json = try await read(h, r, offset: offset, maxBytes: 0)
        #expect(json.resultCode == 0, "\(json)")
        return json["bytesTransferred"] as? Int
    }

    func flush(_ h: String, tag: String) async throws -> [String: Any] {
        let flush = try await call("POST", "/instances/\(h)/flushes", json: #"{"contentTag":"\#(tag)"}"#)
        #expect(flush.status == 200, "\(flush.text)")
        #expect(flush.json.resultCode == 0, "\(flush.text)")
        return flush.json
    }
}

/// The shared block cache between two principals, over real sockets (issue 18, items 1 to 3).
@Suite struct CacheIsolationTests {
    static let block = 65_536
    /// Four V1 blocks in one segment, the last one short (204,608 bytes).
    static let data = RetrievalFixture.content(3 * block + 8_000, seed: 18)
    static let tag = "00112233445566778899aabbccddeeff"

    static func start(cacheBytes: Int64 = 64 << 20) async throws -> (RetrievalFixture, alice: Caller, bob: Caller) {
        let f = try await RetrievalFixture.start(tokens: try AccessTests.tokens(), cacheBytes: cacheBytes)
        return (f, try await Caller.connect(f, AccessTests.aliceToken), try await Caller.connect(f, AccessTests.bobToken))
    }

    /// SHA-256 of `bytes` (a V1 block hash).
    static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        SHA256.hash(data: bytes).withUnsafeBytes { Array($0) }
    }

    /// `info` (V1, one segment) with its block hashes replaced by those of `junk`'s blocks, its HoD
    /// and Kp kept (so its segment ID is the original's); the first `listed` blocks only.
    static func squatting(_ info: [UInt8], junk: [UInt8], listed: Int) throws -> [UInt8] {
        var parsed = try ContentInformationV1.parse(info)
        var segment = parsed.segments[0]
        segment.blockHashes = (0..<listed).map { i in
            sha256(Array(junk[(i * block)..<min((i + 1) * block, junk.count)]))
        }
        parsed.segments = [segment]
        if listed < segment.fullBlockCount { parsed.readBytesInLastSegment = UInt32(listed * block) }
        return parsed.serialize()
    }

    // MARK: - 1. Tags belong to principals

    /// Alice flushing Bob's tag removes nothing of Bob's and says so (0); an entry both hold stays
    /// until both have flushed, and each flush counts what its caller let go of.
    @Test func aFlushRemovesOnlyTheCallersPairs() async throws {
        let (f, alice, bob) = try await Self.start()
        let hb = try await bob.startup()
        let ha = try await alice.startup()
        let info = try await bob.publish(hb, "flush-isolation", Self.data)
        let rb = try await bob.openCompleted(hb, info: info, tag: Self.tag)
        #expect(try await bob.addData(hb, rb, offset: 0, Self.data)["bytesTransferred"] as? Int == Self.data.count)
        #expect(try await bob.cachedBytes(hb, rb, from: 0) == Self.data.count)

        // Alice's flush of the same tag on her own instance: nothing of Bob's goes.
        #expect(try await alice.flush(ha, tag: Self.tag)["bytesTransferred"] as? Int == 0)
        #expect(try await bob.cachedBytes(hb, rb, from: 0) == Self.data.count)
        #expect(f.cache.statistics().entries == 4)

        // Alice holds the same content under the same tag: Bob's flush lets go of his 4, and the
        // entries stay for Alice; hers then removes them.
        let ra = try await alice.openCompleted(ha, info: info, tag: Self.tag)
        try await alice.addData(ha, ra, offset: 0, Self.data)
        #expect(try await bob.flush(hb, tag: Self.tag)["bytesTransferred"] as? Int == 4)
        #expect(try await alice.cachedBytes(ha, ra, from: 0) == Self.data.count)
        #expect(try await bob.flush(hb, tag: Self.tag)["bytesTransferred"] as? Int == 0)
        #expect(try await alice.flush(ha, tag: Self.tag)["bytesTransferred"] as? Int == 4)
        #expect(try await bob.read(hb, rb, offset: 0).resultCode == 4052)
        #expect(f.cache.statistics().entries == 0)
        await f.stop()
    }

    // MARK: - 2. Cache keys cannot be squatted

    /// Alice names Bob's segment (his Kp and HoD) with block hashes of junk, listing every block:
    /// the complete ends 4051, nothing of hers is readable.
    @Test func aCompleteSegmentWhoseBlockHashesDoNotHashToItsHoDIs4051() async throws {
        let (f, alice, bob) = try await Self.start()
        let hb = try await bob.startup()
        let ha = try await alice.startup()
        let info = try await bob.publish(hb, "hod-check", Self.data)
        let junk = RetrievalFixture.content(Self.data.count, seed: 99)
        let forged = try Self.squatting(info, junk: junk, listed: 4)
        let (_, code) = try await alice.open(ha, info: forged, tag: Self.tag)
        #expect(code == 4051)
        // Bob's own structure completes as before.
        _ = try await bob.openCompleted(hb, info: info, tag: Self.tag)
        await f.stop()
    }

    /// Alice lists only the first three blocks of Bob's segment (so its HoD cannot be checked) with
    /// hashes of junk and adds the junk: Bob's AddData is still stored and his reads get his bytes;
    /// his maxBytes 0 query and his missing ranges count only entries under his digests.
    @Test func junkUnderAnotherPrincipalsSegmentIDTakesNothingFromIt() async throws {
        let (f, alice, bob) = try await Self.start()
        let hb = try await bob.startup()
        let ha = try await alice.startup()
        let info = try await bob.publish(hb, "squat", Self.data)
        let junk = RetrievalFixture.content(Self.data.count, seed: 98)
        let forged = try Self.squatting(info, junk: junk, listed: 3)
        let ra = try await alice.openCompleted(ha, info: forged, tag: Self.tag)
        // Junk blocks 1 and 2, self-consistent under Alice's hashes.
        #expect(try await alice.addData(ha, ra, offset: Self.block, Array(junk[Self.block..<(3 * Self.block)])).resultCode == 0)
        #expect(try await alice.cachedBytes(ha, ra, from: Self.block) == 2 * Self.block)

        let rb = try await bob.openCompleted(hb, info: info, tag: Self.tag)
        try await bob.addData(hb, rb, offset: 0, Array(Self.data[0..<Self.block]))
        // Block 0 is his; blocks 1 and 2 are Alice's junk, which he could not read.
        #expect(try await bob.cachedBytes(hb, rb, from: 0) == Self.block)
        let miss = try await bob.read(hb, rb, offset: Self.block)
        #expect(miss.resultCode == 4052)
        #expect(miss["offset"] as? Int == Self.block)
        #expect(miss["bytesTransferred"] as? Int == Self.data.count - Self.block)
        // His blocks 1 and 2 are stored beside Alice's and read back as his bytes.
        try await bob.addData(hb, rb, offset: Self.block, Array(Self.data[Self.block...]))
        #expect(try await bob.cachedBytes(hb, rb, from: 0) == Self.data.count)
        let read = try await bob.call("POST", "/instances/\(hb)/retrievals/\(rb)/reads?op=b1", json: #"{"mode":"block","offset":0,"maxBytes":1048576,"timeoutMs":0}"#)
        #expect(read.json["bytesTransferred"] as? Int == Self.data.count, "\(read.text)")
        let bytes = try await bob.call("GET", "/instances/\(hb)/retrievals/\(rb)/operations/b1/buffer")
        #expect(bytes.body == Self.data)
        // Alice still reads her junk.
        #expect(try await alice.cachedBytes(ha, ra, from: Self.block) == 2 * Self.block)
        await f.stop()
    }

    /// V2: Alice sends a junk piece of Bob's segment; Bob's pieces, sent in two parts, complete his
    /// own staged entry, which verifies.
    @Test func anotherPrincipalsStagedPiecesDoNotSpoilASegment() async throws {
        let (f, alice, bob) = try await Self.start()
        let hb = try await bob.startup()
        let ha = try await alice.startup()
        let info = try await bob.publish(hb, "staged", Self.data, version: 2)
        let layout = try RetrievalLayout.make(ContentInformation.parse(info)).get()
        let first = try #require(layout.entries.first)
        #expect(first.length > 2_000)
        let ra = try await alice.openCompleted(ha, info: info, tag: Self.tag)
        try await alice.addData(ha, ra, offset: 0, [UInt8](repeating: 0xEE, count: 1_000))
        let rb = try await bob.openCompleted(hb, info: info, tag: Self.tag)
        try await bob.addData(hb, rb, offset: 1_000, Array(Self.data[1_000..<first.length]))
        try await bob.addData(hb, rb, offset: 0, Array(Self.data[0..<1_000]))
        #expect(try await bob.cachedBytes(hb, rb, from: 0) == first.length)
        #expect(try await bob.read(hb, rb, offset: 0).resultCode == 0)
        await f.stop()
    }

    // MARK: - 3. The cache is shared fairly

    /// A 1 MiB cache: Bob's 4 blocks, recently read, survive Alice adding 2 MiB of random
    /// self-consistent content (least recently used alone would evict them: the flood is newer);
    /// Alice's own oldest entries are the ones evicted.
    @Test func onePrincipalsFloodDoesNotEvictAnothersRecentEntries() async throws {
        let (f, alice, bob) = try await Self.start(cacheBytes: 1 << 20)
        let hb = try await bob.startup()
        let ha = try await alice.startup()
        let info = try await bob.publish(hb, "working-set", Self.data)
        let rb = try await bob.openCompleted(hb, info: info, tag: Self.tag)
        try await bob.addData(hb, rb, offset: 0, Self.data)
        let warm = try await bob.read(hb, rb, offset: 0)
        #expect(warm.resultCode == 0 && warm["bytesTransferred"] as? Int == Self.data.count, "\(warm)")
        for round in 0..<4 {
            let flood = RetrievalFixture.content(8 * Self.block, seed: 1_000 + UInt64(round))
            let floodInfo = try await alice.publish(ha, "flood-\(round)", flood)
            let ra = try await alice.openCompleted(ha, info: floodInfo, tag: Self.tag)
            try await alice.addData(ha, ra, offset: 0, flood)
        }
        let after = try await bob.read(hb, rb, offset: 0)
        #expect(after.resultCode == 0 && after["bytesTransferred"] as? Int == Self.data.count, "\(after)")
        #expect(f.cache.statistics().misses == 0)
        let stats = f.cache.statistics()
        #expect(stats.bytes <= 1 << 20)
        #expect(stats.evictions > 0)
        await f.stop()
    }
}
