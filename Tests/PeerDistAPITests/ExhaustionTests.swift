import Foundation
import PeerDistEngine
import ServerTesting
import Testing

/// Issue part 4: one client reaching a bound gets the documented answer (429, Retry-After,
/// problem+json with 1816 ERROR_NOT_ENOUGH_QUOTA), and another client keeps being served meanwhile.
@Suite struct ExhaustionTests {
    static let id = APIFixture.contentID("content-1")

    func expectQuota(_ r: RawResponse, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == 429, "\(r.text)", sourceLocation: sourceLocation)
        #expect(r.code == 1816, sourceLocation: sourceLocation)
        #expect(r.json["error"] as? String == "ERROR_NOT_ENOUGH_QUOTA", sourceLocation: sourceLocation)
        #expect(r.header("Retry-After") == "1", sourceLocation: sourceLocation)
        #expect(r.header("Content-Type") == "application/problem+json", sourceLocation: sourceLocation)
    }

    /// The other client: its own instance, a stream, an append that completes and its completion.
    func otherClientIsServed(_ f: APIFixture, _ other: RawHTTPClient, instance h: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let id = APIFixture.contentID("other-\(UUID().uuidString)")
        let open = try await other.request("POST", "/instances/\(h)/content/\(id)/streams", json: "{}")
        #expect(open.status == 201, "\(open.text)", sourceLocation: sourceLocation)
        let s = try #require(open.json["stream"] as? String, sourceLocation: sourceLocation)
        let append = try await other.request("POST", "/instances/\(h)/content/\(id)/streams/\(s)/data", body: [1, 2, 3], headers: [("Prefer", "wait=5")])
        #expect(append.status == 200 && append.json["state"] as? String == "completed", "\(append.text)", sourceLocation: sourceLocation)
        #expect(try await other.request("DELETE", "/instances/\(h)/content/\(id)/streams/\(s)").status == 200, sourceLocation: sourceLocation)
        #expect(try await other.request("GET", "/healthz").status == 200, sourceLocation: sourceLocation)
    }

    func otherInstance(_ other: RawHTTPClient) async throws -> String {
        let r = try await other.request("POST", "/instances", json: "{}")
        return try #require(r.json["handle"] as? String, "\(r.text)")
    }

    @Test func instances() async throws {
        let f = try await APIFixture.start(limits: EngineLimits(maxInstances: 2))
        let other = try await f.newClient()
        let theirs = try await otherInstance(other)
        _ = try await f.startup()
        expectQuota(try await f.client.request("POST", "/instances", json: "{}"))
        try await otherClientIsServed(f, other, instance: theirs)
        await f.stop()
    }

    @Test func ports() async throws {
        let f = try await APIFixture.start(limits: EngineLimits(maxPortsPerInstance: 2))
        let other = try await f.newClient()
        let theirs = try await otherInstance(other)
        let h = try await f.startup()
        #expect(try await f.client.request("POST", "/instances/\(h)/ports").status == 201)
        expectQuota(try await f.client.request("POST", "/instances/\(h)/ports"))
        try await otherClientIsServed(f, other, instance: theirs)
        #expect(try await other.request("POST", "/instances/\(theirs)/ports").status == 201)
        await f.stop()
    }

    @Test func streams() async throws {
        let f = try await APIFixture.start(limits: EngineLimits(maxStreamsPerInstance: 1))
        let other = try await f.newClient()
        let theirs = try await otherInstance(other)
        let h = try await f.startup()
        _ = try await f.openStream(h, Self.id)
        expectQuota(try await f.client.request("POST", "/instances/\(h)/content/\(APIFixture.contentID("second"))/streams", json: "{}"))
        try await otherClientIsServed(f, other, instance: theirs)
        await f.stop()
    }

    @Test func contentInformationHandles() async throws {
        let f = try await APIFixture.start(limits: EngineLimits(maxContentInfoHandlesPerInstance: 1))
        let other = try await f.newClient()
        let theirs = try await otherInstance(other)
        let h = try await f.startup()
        try await f.publish(h, Self.id, Array(repeating: 1, count: 100))
        #expect(try await f.client.request("POST", "/instances/\(h)/content/\(Self.id)/contentinfo", json: "{}").status == 201)
        expectQuota(try await f.client.request("POST", "/instances/\(h)/content/\(Self.id)/contentinfo", json: "{}"))
        try await otherClientIsServed(f, other, instance: theirs)
        await f.stop()
    }

    /// Operations kept per instance (pending plus retained).
    @Test func pendingOperations() async throws {
        let f = try await APIFixture.start(limits: EngineLimits(maxOperationsPerInstance: 3))
        let other = try await f.newClient()
        let theirs = try await otherInstance(other)
        let h = try await f.startup()
        // Only this client's instance holds its operations pending (the fault is per kind, so
        // the other client's appends are delayed too: it completes a stream instead).
        let s = try await f.openStream(h, Self.id)
        try await f.setFaults(#"{"completionDelayMs":60000,"kinds":["publishAddToStream"]}"#)
        for _ in 0..<3 {
            #expect(try await f.client.request("POST", "/instances/\(h)/content/\(Self.id)/streams/\(s)/data", body: [1]).status == 202)
        }
        expectQuota(try await f.client.request("POST", "/instances/\(h)/content/\(Self.id)/streams/\(s)/data", body: [1]))
        let id = APIFixture.contentID("other")
        let open = try await other.request("POST", "/instances/\(theirs)/content/\(id)/streams", json: "{}")
        let os = try #require(open.json["stream"] as? String)
        let complete = try await other.request("POST", "/instances/\(theirs)/content/\(id)/streams/\(os)/complete", headers: [("Prefer", "wait=5")])
        #expect(complete.status == 200 && complete.json["state"] as? String == "completed", "\(complete.text)")
        await f.stop()
    }

    /// Issue 23, part 3: ended operations kept for --retention never refuse new work. Once the
    /// pending ones that filled the bound have ended (their stream closed) and their completions
    /// were dequeued, a new append is served, and the oldest ended operations are forgotten early.
    @Test func retainedOperationsNeverRefuseNewWork() async throws {
        let f = try await APIFixture.start(limits: EngineLimits(maxOperationsPerInstance: 20))
        let h = try await f.startup()
        let s = try await f.openStream(h, Self.id)
        try await f.setFaults(#"{"completionDelayMs":60000,"kinds":["publishAddToStream"]}"#)
        for n in 0..<20 {
            let r = try await f.client.request("POST", "/instances/\(h)/content/\(Self.id)/streams/\(s)/data?op=a\(n)", body: [1])
            #expect(r.status == 202, "\(r.text)")
        }
        expectQuota(try await f.client.request("POST", "/instances/\(h)/content/\(Self.id)/streams/\(s)/data", body: [1]))
        #expect(try await f.client.request("DELETE", "/instances/\(h)/content/\(Self.id)/streams/\(s)").status == 200)
        let drained = try await f.client.request("GET", "/instances/\(h)/ports/default/completions?max=64&timeoutMs=5000")
        let completions = try #require(drained.json["completions"] as? [[String: Any]], "\(drained.text)")
        #expect(completions.count == 20)
        #expect(completions.allSatisfy { ($0["result"] as? [String: Any])?["code"] as? Int == 995 })
        try await f.setFaults("{}")
        let second = APIFixture.contentID("second")
        let s2 = try await f.openStream(h, second)
        let append = try await f.client.request(
            "POST", "/instances/\(h)/content/\(second)/streams/\(s2)/data?op=fresh", body: [1, 2, 3], headers: [("Prefer", "wait=5")])
        #expect(append.status == 200 && append.json["state"] as? String == "completed", "\(append.text)")
        // The oldest ended operation made room: reading it is as after its retention.
        let forgotten = try await f.client.request("GET", "/instances/\(h)/operations/a0")
        #expect(forgotten.status == 404 && forgotten.code == 4059, "\(forgotten.text)")
        #expect(try await f.client.request("GET", "/instances/\(h)/operations/a19").status == 200)
        let metrics = try await f.client.request("GET", "/metrics").text
        #expect(metrics.contains("peerdist_operations_released_early_total 1"), "\(metrics)")
        await f.stop()
    }

    /// Callers parked on one port (--max-waiters).
    @Test func parkedWaiters() async throws {
        let f = try await APIFixture.start(limits: EngineLimits(maxWaitersPerPort: 1))
        let other = try await f.newClient()
        let theirs = try await otherInstance(other)
        let h = try await f.startup()
        let parked = try await f.newClient()
        try await parked.send("GET /instances/\(h)/ports/default/completions?timeoutMs=20000 HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(await eventually { f.engine.parkedDequeueCount(instance: h, port: "default") == 1 })
        expectQuota(try await f.client.request("GET", "/instances/\(h)/ports/default/completions?timeoutMs=20000"))
        try await otherClientIsServed(f, other, instance: theirs)
        let dequeued = try await other.request("GET", "/instances/\(theirs)/ports/default/completions?timeoutMs=1000")
        #expect((dequeued.json["completions"] as? [[String: Any]])?.count == 1, "\(dequeued.text)")
        parked.close()
        await f.stop()
    }

    /// Callers parked on one operation.
    @Test func operationWaiters() async throws {
        let f = try await APIFixture.start(limits: EngineLimits(maxWaitersPerOperation: 1))
        let other = try await f.newClient()
        let theirs = try await otherInstance(other)
        let h = try await f.startup()
        try await f.setFaults(#"{"completionDelayMs":60000,"kinds":["publishCompleteStream"]}"#)
        let s = try await f.openStream(h, Self.id)
        #expect(try await f.client.request("POST", "/instances/\(h)/content/\(Self.id)/streams/\(s)/complete?op=c1").status == 202)
        let parked = try await f.newClient()
        try await parked.send("GET /instances/\(h)/content/\(Self.id)/operations/c1?timeoutMs=20000 HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(await eventually { f.engine.statistics().parkedWaiters == 1 })
        expectQuota(try await f.client.request("GET", "/instances/\(h)/content/\(Self.id)/operations/c1?timeoutMs=20000"))
        try await otherClientIsServed(f, other, instance: theirs)
        parked.close()
        await f.stop()
    }

    /// Status-change waiters per instance.
    @Test func statusWaiters() async throws {
        let f = try await APIFixture.start(limits: EngineLimits(maxStatusWaitersPerInstance: 1))
        let other = try await f.newClient()
        let theirs = try await otherInstance(other)
        let h = try await f.startup()
        let parked = try await f.newClient()
        try await parked.send("GET /instances/\(h)/status?timeoutMs=20000 HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(await eventually { f.engine.statistics().parkedWaiters == 1 })
        expectQuota(try await f.client.request("GET", "/instances/\(h)/status?timeoutMs=20000"))
        try await otherClientIsServed(f, other, instance: theirs)
        parked.close()
        await f.stop()
    }

    /// Completions queued on a port and not dequeued: a call that would start an operation bound to
    /// the full port is refused.
    @Test func queuedCompletions() async throws {
        let f = try await APIFixture.start(limits: EngineLimits(maxQueuedCompletionsPerPort: 2))
        let other = try await f.newClient()
        let theirs = try await otherInstance(other)
        let h = try await f.startup()
        try await f.publish(h, Self.id, Array(repeating: 1, count: 100))  // its 2 completions fill `default`
        let open = try await f.client.request("POST", "/instances/\(h)/content/\(Self.id)/contentinfo", json: "{}")
        let c = try #require(open.json["contentInfo"] as? String, "\(open.text)")
        expectQuota(try await f.client.request("POST", "/instances/\(h)/content/\(Self.id)/contentinfo/\(c)/reads"))
        try await otherClientIsServed(f, other, instance: theirs)
        // Dequeuing makes room again.
        _ = try await f.client.request("GET", "/instances/\(h)/ports/default/completions?timeoutMs=0")
        #expect(try await f.client.request("POST", "/instances/\(h)/content/\(Self.id)/contentinfo/\(c)/reads").status == 200)
        await f.stop()
    }
}
