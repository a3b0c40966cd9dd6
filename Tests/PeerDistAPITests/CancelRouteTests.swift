import Foundation
import ServerTesting
import Testing

/// The return-code table of DELETE …/operations/{op} (PeerDistServerCancelAsyncOperation).
@Suite struct CancelRouteTests {
    static let id = APIFixture.contentID("content-1")

    /// An append held pending by a fault delay, named `op`.
    func pendingAppend(_ f: APIFixture, _ h: String, op: String) async throws {
        try await f.setFaults(#"{"completionDelayMs":60000,"kinds":["publishAddToStream"]}"#)
        let s = try await f.openStream(h, Self.id)
        let r = try await f.client.request("POST", "/instances/\(h)/content/\(Self.id)/streams/\(s)/data?op=\(op)", body: Array("abc".utf8))
        #expect(r.status == 202)
        #expect(r.json["state"] as? String == "pending")
        #expect(r.json.resultCode == 996)
    }

    @Test func successPostsBeforeAnsweringAndWakesWaiters() async throws {
        let f = try await APIFixture.start()
        let h = try await f.startup()
        try await pendingAppend(f, h, op: "w1")
        // A waiter on the operation and one on the port, parked before the cancel.
        let opWaiter = try await f.newClient()
        let portWaiter = try await f.newClient()
        try await opWaiter.send("GET /instances/\(h)/content/\(Self.id)/operations/w1?timeoutMs=20000 HTTP/1.1\r\nHost: t\r\n\r\n")
        try await portWaiter.send("GET /instances/\(h)/ports/default/completions?timeoutMs=20000 HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(await eventually { f.engine.parkedDequeueCount(instance: h, port: "default") == 1 })
        try await Task.sleep(for: .milliseconds(50))

        let r = try await f.client.request("DELETE", "/instances/\(h)/content/\(Self.id)/operations/w1")
        #expect(r.status == 200)
        #expect(r.code == 0)
        #expect(r.json["error"] as? String == "ERROR_SUCCESS")
        #expect((r.json["lastError"] as? [String: Any])?["code"] as? Int == 995)
        #expect(r.operation["state"] as? String == "canceled")
        #expect(r.operation.resultCode == 995)

        let woken = try await opWaiter.readResponse()
        #expect(woken.json["state"] as? String == "canceled")
        #expect(woken.json.resultCode == 995)
        let port = try await portWaiter.readResponse()
        let completions = port.json["completions"] as? [[String: Any]] ?? []
        #expect(completions.count == 1)
        #expect(completions.first?["operation"] as? String == "w1")
        #expect(completions.first?.resultCode == 995)

        let again = try await f.client.request("DELETE", "/instances/\(h)/content/\(Self.id)/operations/w1")
        #expect(again.status == 404)
        #expect(again.code == 4059)
        #expect(again.json["error"] as? String == "PEERDIST_ERROR_OPERATION_NOT_FOUND")
        let read = try await f.client.request("GET", "/instances/\(h)/content/\(Self.id)/operations/w1")
        #expect(read.json["state"] as? String == "canceled")
        // Also readable at the instance level, whatever handle it belongs to.
        let byInstance = try await f.client.request("GET", "/instances/\(h)/operations/w1")
        #expect(byInstance.json["state"] as? String == "canceled")
        #expect(byInstance.json.resultCode == 995)
        #expect(try await f.client.request("GET", "/instances/\(h)/operations/nope").code == 4059)
        await f.stop()
    }

    /// The completion is already queued when the DELETE returns; exactly one per operation.
    @Test func completionIsQueuedWhenDeleteReturns() async throws {
        let f = try await APIFixture.start()
        let h = try await f.startup()
        for i in 0..<20 {
            try await pendingAppend(f, h, op: "q\(i)")
            let r = try await f.client.request("DELETE", "/instances/\(h)/content/\(Self.id)/operations/q\(i)")
            #expect(r.status == 200)
            let port = try await f.client.request("GET", "/instances/\(h)/ports/default/completions?timeoutMs=0&max=10")
            let completions = port.json["completions"] as? [[String: Any]] ?? []
            #expect(completions.count == 1)
            #expect(completions.first?["operation"] as? String == "q\(i)")
            #expect(completions.first?.resultCode == 995)
        }
        await f.stop()
    }

    /// HEAD on the completions long-poll delivers no completion, so it consumes none.
    @Test func headOnCompletionsConsumesNothing() async throws {
        let f = try await APIFixture.start()
        let h = try await f.startup()
        let s = try await f.openStream(h, Self.id)
        _ = try await f.client.request("POST", "/instances/\(h)/content/\(Self.id)/streams/\(s)/data?op=h1", body: [1], headers: [("Prefer", "wait=5")])
        let head = try await f.client.request("HEAD", "/instances/\(h)/ports/default/completions?timeoutMs=0")
        #expect(head.status == 200)
        let get = try await f.client.request("GET", "/instances/\(h)/ports/default/completions?timeoutMs=0")
        #expect((get.json["completions"] as? [[String: Any]])?.first?["operation"] as? String == "h1")
        await f.stop()
    }

    /// A status wait parked when its instance shuts down answers 410 with 995.
    @Test func shutdownEndsAParkedStatusWait() async throws {
        let f = try await APIFixture.start()
        let h = try await f.startup()
        let waiter = try await f.newClient()
        try await waiter.send("GET /instances/\(h)/status?timeoutMs=20000 HTTP/1.1\r\nHost: t\r\n\r\n")
        try await Task.sleep(for: .milliseconds(200))
        #expect(try await f.client.request("DELETE", "/instances/\(h)").status == 200)
        let answer = try await waiter.readResponse()
        #expect(answer.status == 410)
        #expect(answer.code == 995)
        #expect(answer.header("Content-Type") == "application/problem+json")
        await f.stop()
    }

    @Test func operationThatCompletedFirstKeepsItsResult() async throws {
        let f = try await APIFixture.start()
        let h = try await f.startup()
        let s = try await f.openStream(h, Self.id)
        let r = try await f.client.request("POST", "/instances/\(h)/content/\(Self.id)/streams/\(s)/data?op=done1",
                                           body: Array("abc".utf8), headers: [("Prefer", "wait=5")])
        #expect(r.status == 200)
        #expect(r.header("Preference-Applied") == "wait=5")
        #expect(r.json["state"] as? String == "completed")
        let cancel = try await f.client.request("DELETE", "/instances/\(h)/content/\(Self.id)/operations/done1")
        #expect(cancel.status == 404)
        #expect(cancel.code == 4059)
        let read = try await f.client.request("GET", "/instances/\(h)/content/\(Self.id)/operations/done1")
        #expect(read.json["state"] as? String == "completed")
        #expect(read.json.resultCode == 0)
        #expect(read.json["bytesTransferred"] as? Int == 3)
        await f.stop()
    }

    @Test func errorRows() async throws {
        let f = try await APIFixture.start()
        let h = try await f.startup()
        try await pendingAppend(f, h, op: "p1")
        let base = "/instances/\(h)/content"
        let rows: [(path: String, status: Int, code: Int)] = [
            ("\(base)/a!b/operations/p1", 400, 87),                          // bad base64url
            ("\(base)//operations/p1", 400, 87),                             // empty identifier
            ("\(base)/\(String(repeating: "A", count: 1_368))/operations/p1", 400, 87), // 1,026 bytes
            ("\(base)/YQ=/operations/p1", 400, 87),                          // padding is not allowed
            ("\(base)/\(Self.id)/operations/bad!op", 400, 87),               // malformed op id
            ("\(base)/\(Self.id)/operations/\(String(repeating: "o", count: 65))", 400, 87),
            ("/instances/inst_unknown/content/\(Self.id)/operations/p1", 404, 6),
            ("/instances/inst_unknown/content/a!b/operations/p1", 404, 6), // handle before parameters
            ("\(base)/\(Self.id)/operations/nope", 404, 4059),
            ("\(base)/\(APIFixture.contentID("other"))/operations/p1", 404, 4059), // other content
        ]
        for row in rows {
            let r = try await f.client.request("DELETE", row.path)
            #expect(r.status == row.status, "\(row.path): \(r.text)")
            #expect(r.code == row.code, "\(row.path): \(r.text)")
            #expect(r.header("Content-Type") == "application/problem+json")
        }
        // 1,024 bytes exactly is a valid identifier (and the op is not found under it).
        let maxID = String(repeating: "A", count: 1_365) + "A"
        #expect(try await f.client.request("DELETE", "\(base)/\(maxID)/operations/p1").code == 4059)

        // Policy disabled: 403 before anything else, even a malformed parameter.
        #expect(try await f.client.request("PUT", "/admin/policy", json: #"{"enabled":false}"#).status == 200)
        for path in ["\(base)/\(Self.id)/operations/p1", "\(base)/a!b/operations/p1"] {
            let r = try await f.client.request("DELETE", path)
            #expect(r.status == 403)
            #expect(r.code == 1260)
            #expect(r.json["error"] as? String == "ERROR_ACCESS_DISABLED_BY_POLICY")
        }
        #expect(try await f.client.request("PUT", "/admin/policy", json: #"{"enabled":true}"#).status == 200)

        // Service unavailable: 503 with Retry-After.
        #expect(try await f.client.request("PUT", "/admin/service", json: #"{"available":false,"retryAfterSeconds":7}"#).status == 200)
        let unavailable = try await f.client.request("DELETE", "\(base)/\(Self.id)/operations/p1")
        #expect(unavailable.status == 503)
        #expect(unavailable.code == 4065)
        #expect(unavailable.header("Retry-After") == "7")
        #expect(try await f.client.request("PUT", "/admin/service", json: #"{"available":true}"#).status == 200)
        await f.stop()
    }

    /// Races between cancellation and completion, many times over HTTP: each operation ends
    /// once, and exactly one completion is dequeued for it.
    @Test func cancelRacingCompletionEndsEachOperationOnce() async throws {
        let f = try await APIFixture.start()
        let h = try await f.startup()
        try await f.setFaults(#"{"completionDelayMs":2,"kinds":["publishAddToStream"]}"#)
        let s = try await f.openStream(h, Self.id)
        let canceller = try await f.newClient()
        var cancelled = 0
        let rounds = 150
        for i in 0..<rounds {
            let r = try await f.client.request("POST", "/instances/\(h)/content/\(Self.id)/streams/\(s)/data?op=r\(i)", body: [UInt8(i & 0xFF)])
            #expect(r.status == 202 || r.status == 200)
            if i % 3 != 0 { try await Task.sleep(for: .microseconds(Int.random(in: 0...3_000))) }
            let c = try await canceller.request("DELETE", "/instances/\(h)/content/\(Self.id)/operations/r\(i)")
            #expect(c.status == 200 || c.code == 4059, "\(c.text)")
            if c.status == 200 { cancelled += 1 }
        }
        var seen: [String: Int] = [:]
        var canceledResults = 0
        while seen.count < rounds {
            let port = try await f.client.request("GET", "/instances/\(h)/ports/default/completions?timeoutMs=2000&max=1024")
            let batch = port.json["completions"] as? [[String: Any]] ?? []
            if batch.isEmpty { break }
            for c in batch {
                seen[c["operation"] as? String ?? "", default: 0] += 1
                if c.resultCode == 995 { canceledResults += 1 }
            }
        }
        #expect(seen.count == rounds)
        #expect(seen.values.allSatisfy { $0 == 1 })
        #expect(canceledResults == cancelled)
        await f.stop()
    }
}
