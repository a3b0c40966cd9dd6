import Foundation
import HTTPServer
import PeerDistAPI
import PeerDistEngine
import ServerTesting
import Testing

/// One memory budget per principal (issue 18 item 4), over real sockets with two principals:
/// content-information handles share one encoded copy, `GET /instances` reports the caller's use,
/// and a principal past its budget is 429 (1816, Retry-After) while another is served.
@Suite struct MemoryBudgetTests {
    /// A caller: one keep-alive connection and its token.
    struct Caller {
        let client: RawHTTPClient
        let token: String

        func call(_ method: String, _ path: String, json: String? = nil, body: [UInt8]? = nil, wait: Bool = false)
            async throws -> RawResponse
        {
            var headers = [("Authorization", "Bearer \(token)")]
            if wait { headers.append(("Prefer", "wait=10")) }
            return try await client.request(method, path, json: json, body: body, headers: headers)
        }

        func startup() async throws -> String {
            let r = try await call("POST", "/instances", json: #"{"version":2}"#)
            #expect(r.status == 201, "\(r.text)")
            return try #require(r.json["handle"] as? String)
        }

        /// Publishes `content` under `id` (V1 and V2) and returns its whole V1 content information.
        func publish(_ h: String, _ id: String, _ content: [UInt8]) async throws -> [UInt8] {
            let open = try await call("POST", "/instances/\(h)/content/\(id)/streams", json: #"{"version":2}"#)
            let s = try #require(open.json["stream"] as? String, "\(open.text)")
            let append = try await call("POST", "/instances/\(h)/content/\(id)/streams/\(s)/data", body: content, wait: true)
            #expect(append.json["state"] as? String == "completed", "\(append.text)")
            let done = try await call("POST", "/instances/\(h)/content/\(id)/streams/\(s)/complete", wait: true)
            #expect(done.json["state"] as? String == "completed", "\(done.text)")
            let info = try await call("GET", "/instances/\(h)/content/\(id)/contentinfo?version=1")
            #expect(info.status == 200, "\(info.text)")
            return info.body
        }

        /// Opens a V1 content-information handle over `offset`, `length`.
        func openContentInfo(_ h: String, _ id: String, offset: Int = 0, length: Int = 0) async throws -> RawResponse {
            try await call(
                "POST", "/instances/\(h)/content/\(id)/contentinfo",
                json: #"{"minVersion":1,"maxVersion":1,"offset":\#(offset),"length":\#(length)}"#)
        }

        /// The `usage` object of `GET /instances`.
        func usage() async throws -> [String: Any] {
            let r = try await call("GET", "/instances")
            #expect(r.status == 200, "\(r.text)")
            return try #require(r.json["usage"] as? [String: Any], "\(r.text)")
        }

        func memory() async throws -> [String: Int] {
            let usage = try await usage()
            return try #require(usage["memory"] as? [String: Int], "\(usage)")
        }
    }

    static func start(budget: Int) async throws -> (RetrievalFixture, alice: Caller, bob: Caller) {
        let f = try await RetrievalFixture.start(
            limits: EngineLimits(maxMemoryPerPrincipal: budget), tokens: try AccessTests.tokens())
        let alice = Caller(client: try await f.api.newClient(), token: AccessTests.aliceToken)
        let bob = Caller(client: try await f.api.newClient(), token: AccessTests.bobToken)
        return (f, alice, bob)
    }

    static func expectQuota(_ r: RawResponse, _ comment: Comment? = nil) {
        #expect(r.status == 429, comment)
        #expect(r.header("Retry-After") == "1", comment)
        #expect(r.json["code"] as? Int == 1816, comment)
        #expect(r.json["error"] as? String == "ERROR_NOT_ENOUGH_QUOTA", comment)
    }

    /// Eight handles on one publication hold one encoded copy: alice's `usage` counts it once
    /// (eight copies would pass her budget), a read's retained buffer counts too, and closing the
    /// handles gives it back.
    @Test func contentInformationHandlesShareOneCopy() async throws {
        let content = RetrievalFixture.content(1 << 20)
        // The budget holds about three copies of the content information (614 bytes).
        let (f, alice, _) = try await Self.start(budget: 2_000)
        defer { Task { await f.stop() } }
        let h = try await alice.startup()
        let id = APIFixture.contentID("shared")
        let info = try await alice.publish(h, id, content)
        var handles: [String] = []
        for _ in 0..<8 {
            let open = try await alice.openContentInfo(h, id)
            #expect(open.status == 201, "\(open.text)")
            handles.append(try #require(open.json["contentInfo"] as? String))
        }
        var usage = try await alice.usage()
        #expect(usage["memoryLimitBytes"] as? Int == 2_000)
        #expect(usage["openHandles"] as? Int == 9)  // and the stream that published
        var memory = try await alice.memory()
        #expect(memory["contentInformation"] == info.count)
        #expect(memory["readBuffers"] == 0)
        #expect(usage["memoryBytes"] as? Int == info.count)

        // A read's buffer, kept for its caller, counts as well.
        let read = try await alice.call("POST", "/instances/\(h)/content/\(id)/contentinfo/\(handles[0])/reads?maxBytes=65536", wait: true)
        #expect(read.json["bytesTransferred"] as? Int == info.count, "\(read.text)")
        memory = try await alice.memory()
        #expect(memory["readBuffers"] == info.count)

        for handle in handles {
            #expect(try await alice.call("DELETE", "/instances/\(h)/content/\(id)/contentinfo/\(handle)").status == 200)
        }
        usage = try await alice.usage()
        memory = try await alice.memory()
        #expect(memory["contentInformation"] == 0)
        #expect(usage["openHandles"] as? Int == 1)
    }

    /// Alice fills her budget with content information over distinct ranges: the next handle and
    /// her retrieval's content information are 429 (1816, Retry-After); bob, on the same server, opens
    /// handles, completes a retrieval and reads it. Once alice closes a handle she has room again.
    @Test func aPrincipalPastItsBudgetIs429AndAnotherIsServed() async throws {
        // 128 blocks: some 4 KiB of content information a copy; the budget holds 23 of them, and
        // one AddData of a block.
        let content = RetrievalFixture.content(8 << 20)
        let (f, alice, bob) = try await Self.start(budget: 100_000)
        defer { Task { await f.stop() } }
        let hA = try await alice.startup(), hB = try await bob.startup()
        let id = APIFixture.contentID("budget")
        let infoA = try await alice.publish(hA, id, content)
        let infoB = try await bob.publish(hB, id, content)
        #expect(infoA.count > 4_000)

        var opened: [String] = []
        var refusal: RawResponse?
        for index in 0..<40 {
            // Each range covers every block, so each encoding is as large as the whole one.
            let open = try await alice.openContentInfo(hA, id, offset: 0, length: content.count - index - 1)
            guard open.status == 201 else {
                refusal = open
                break
            }
            opened.append(try #require(open.json["contentInfo"] as? String))
        }
        let usageNow = try await alice.usage()
        let refused = try #require(refusal, "alice opened 40 handles of distinct ranges within 100,000 bytes: \(usageNow) \(infoA.count)")
        Self.expectQuota(refused, "\(refused.text)")
        #expect(opened.count == 100_000 / infoA.count)
        let aliceMemory = try await alice.usage()["memoryBytes"] as? Int ?? 0
        #expect(aliceMemory == opened.count * infoA.count)

        // Alice's retrieval cannot take her content information now.
        let tag = String(repeating: "ab", count: 16)
        let retrievalA = try await alice.call("POST", "/instances/\(hA)/retrievals", json: #"{"contentTag":"\#(tag)"}"#)
        let rA = try #require(retrievalA.json["retrieval"] as? String, "\(retrievalA.text)")
        Self.expectQuota(try await alice.call("POST", "/instances/\(hA)/retrievals/\(rA)/contentinfo", body: infoA, wait: true))

        // Bob is served as if alice were not there.
        let open = try await bob.openContentInfo(hB, id)
        #expect(open.status == 201, "\(open.text)")
        let retrievalB = try await bob.call("POST", "/instances/\(hB)/retrievals", json: #"{"contentTag":"\#(tag)"}"#)
        let rB = try #require(retrievalB.json["retrieval"] as? String, "\(retrievalB.text)")
        let addB = try await bob.call("POST", "/instances/\(hB)/retrievals/\(rB)/contentinfo", body: infoB, wait: true)
        #expect(addB.json["state"] as? String == "completed", "\(addB.text)")
        let completeB = try await bob.call("POST", "/instances/\(hB)/retrievals/\(rB)/contentinfo/complete", wait: true)
        #expect(completeB.json["state"] as? String == "completed", "\(completeB.text)")
        let bobMemory = try await bob.memory()
        #expect(bobMemory["contentInformation"] == infoB.count)
        #expect((bobMemory["retrievalContentInformation"] ?? 0) > 0)
        let dataB = try await bob.call("POST", "/instances/\(hB)/retrievals/\(rB)/data?offset=0", body: Array(content[..<65_536]), wait: true)
        #expect(dataB.json["state"] as? String == "completed", "\(dataB.text)")
        let readB = try await bob.call(
            "POST", "/instances/\(hB)/retrievals/\(rB)/reads", json: #"{"mode":"block","offset":0,"maxBytes":1024,"timeoutMs":0}"#,
            wait: true)
        #expect(readB.json["bytesTransferred"] as? Int == 1_024, "\(readB.text)")

        // Room comes back when alice lets go of a handle.
        let first = try #require(opened.first)
        #expect(try await alice.call("DELETE", "/instances/\(hA)/content/\(id)/contentinfo/\(first)").status == 200)
        let addA = try await alice.call("POST", "/instances/\(hA)/retrievals/\(rA)/contentinfo", body: infoA, wait: true)
        #expect(addA.json["state"] as? String == "completed", "\(addA.text)")
        #expect(try await alice.memory()["retrievalContentInformation"] == infoA.count)
    }
}
