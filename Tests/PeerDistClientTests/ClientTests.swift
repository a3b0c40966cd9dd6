import Foundation
import PeerDistClient
import PeerDistTesting
import Testing

// Every operation family of openapi.yaml through the generated client (`client.api`) and the
// thin layer over it, against a live in-process server. Only PeerDistClient and PeerDistTesting
// are imported: what a harness author has.

private func bytes(_ count: Int, seed: UInt8 = 7) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) }
}

/// Runs `body` and returns the PeerDistError it threw (nil when it threw none).
private func peerDistError(_ body: () async throws -> Void) async -> PeerDistError? {
    do {
        try await body()
        return nil
    } catch let error as PeerDistError {
        return error
    } catch {
        Issue.record("expected a PeerDistError, got \(error)")
        return nil
    }
}

@Suite struct OperationalAndInstanceTests {
    @Test func operationalRoutesAnswer() async throws {
        try await PeerDistTestServer.with { server in
            let health = try await server.client.api.getHealth()
            _ = try health.ok.body.json
            let ready = try await server.client.api.getReadiness()
            _ = try ready.ok.body.json
            let yaml = try await String(collecting: try server.client.api.getOpenAPI().ok.body.yaml, upTo: 1 << 20)
            #expect(yaml.hasPrefix("openapi: 3.1.0"))
            #expect(yaml.contains("/admin/clock/advance"))
            let metrics = try await String(collecting: try server.client.api.getMetrics().ok.body.plainText, upTo: 1 << 22)
            #expect(metrics.contains("# TYPE"))
        }
    }

    @Test func instanceLifecycle() async throws {
        try await PeerDistTestServer.with { server in
            let instance = try await server.client.startInstance(version: 2)
            #expect(instance.handle.hasPrefix("inst_"))
            let info = try await server.client.api.getInstance(path: .init(h: instance.handle)).ok.body.json
            #expect(info.handle == instance.handle)
            #expect(info.status == .available)
            let status = try await server.client.api.waitInstanceStatus(path: .init(h: instance.handle), query: .init(timeoutMs: 0)).ok.body.json
            #expect(status.changed == false)
            let page = try await server.client.api.listInstanceOperations(path: .init(h: instance.handle)).ok.body.json
            #expect(page.operations.isEmpty)
            try await instance.shutdown()
            // The generated client hands the problem back as a documented case ...
            guard case .notFound(let notFound) = try await server.client.api.getInstance(path: .init(h: instance.handle)) else {
                Issue.record("a shut-down instance must be 404")
                return
            }
            #expect(try notFound.body.applicationProblemJson.value1.code == 6)
            // ... the layer throws it.
            let error = await peerDistError { _ = try await instance.dequeue() }
            #expect(error?.code == 6)
            #expect(error?.error == "ERROR_INVALID_HANDLE")
            #expect(error?.status == 404)
        }
    }

    @Test func unsupportedVersionIsATypedError() async throws {
        try await PeerDistTestServer.with { server in
            let error = await peerDistError { _ = try await server.client.startInstance(version: 3) }
            #expect(error?.code == 4062)
            #expect(error?.status == 400)
        }
    }
}

@Suite struct PublishingTests {
    @Test func publishThenContentInformationBothWays() async throws {
        try await PeerDistTestServer.with { server in
            let instance = try await server.client.startInstance()
            let content: ContentID = "publish-and-read"
            let data = bytes(200_000)
            let done = try await instance.publish(content, bytes: data, chunkSize: 65_536, version: 1)
            #expect(done.kind == .publishCompleteStream)
            #expect(done.state == .completed)
            #expect(done.resultCode == 0)

            let publication = try await server.client.api.getPublication(path: .init(h: instance.handle, id: content.encoded)).ok.body.json
            #expect(publication.length == data.count)

            // Four appends and the complete, each posted once to the default port.
            let completions = try await instance.drain()
            #expect(completions.filter { $0.kind == .publishAddToStream }.count == 4)
            #expect(completions.filter { $0.kind == .publishCompleteStream }.count == 1)
            #expect(completions.allSatisfy { $0.result.code == 0 })
            #expect(try await instance.drain().isEmpty)

            // The whole content information in one GET equals what the handle's reads return.
            let whole = try await instance.contentInformation(content, version: 1)
            #expect(whole.count > 100)
            let opened = try await server.client.api.openContentInformation(
                path: .init(h: instance.handle, id: content.encoded), body: .json(.init(minVersion: 1, maxVersion: 1)))
            let handle = try opened.created.body.json.contentInfo
            var read: [UInt8] = []
            var ended = false
            for index in 0..<1_000 where !ended {
                let op = "read\(index)"
                let output = try await server.client.api.retrieveContentInformation(
                    path: .init(h: instance.handle, id: content.encoded, c: handle), query: .init(maxBytes: 4_096, op: op),
                    headers: .init(prefer: "wait=5"))
                let operation: PeerDistOperation
                switch output {
                case .ok(let ok): operation = try ok.body.json
                case .accepted(let accepted): operation = try await instance.waitOperation(content, try accepted.body.json.id, timeout: .seconds(5))
                default: Issue.record("unexpected \(output)"); return
                }
                if operation.resultCode == 4053 { ended = true; continue }
                #expect(operation.state == .completed)
                #expect(operation.offset == read.count)
                let buffer = try await server.client.api.getOperationBuffer(path: .init(h: instance.handle, id: content.encoded, op: op)).ok
                #expect(buffer.headers.xPeerDistOffset == read.count)
                read += try await [UInt8](collecting: buffer.body.binary, upTo: 1 << 20)
            }
            #expect(ended)
            #expect(read == whole)
            _ = try await server.client.api.closeContentInformation(path: .init(h: instance.handle, id: content.encoded, c: handle)).ok
            _ = try await server.client.api.unpublish(path: .init(h: instance.handle, id: content.encoded)).ok
            let gone = await peerDistError { _ = try await instance.contentInformation(content) }
            #expect(gone?.code == 1168)
        }
    }

    @Test func streamedAppendsHashLikeOneAppend() async throws {
        try await PeerDistTestServer.with { server in
            let instance = try await server.client.startInstance()
            let data = bytes(150_000, seed: 3)
            try await instance.publish("one-append", bytes: data, chunkSize: data.count, version: 2)

            let stream = try await instance.openStream("streamed", contentLength: data.count, version: 2)
            let chunks = AsyncStream<ArraySlice<UInt8>> { continuation in
                var start = 0
                while start < data.count {
                    continuation.yield(data[start..<min(data.count, start + 10_000)])
                    start += 10_000
                }
                continuation.finish()
            }
            let appended = try await stream.append(streaming: chunks, length: data.count, operation: "streamed-append", wait: .seconds(10))
            #expect(appended.id == "streamed-append")
            #expect(appended.state == .completed)
            #expect(appended.bytesTransferred == data.count)
            let completed = try await stream.complete(wait: .seconds(10))
            #expect(completed.state == .completed)
            // Same bytes, same content information, however they arrived.
            let a = try await instance.contentInformation("one-append", version: 2)
            let b = try await instance.contentInformation("streamed", version: 2)
            #expect(a == b)
            #expect(!a.isEmpty)
            // A second complete is refused with its Win32 code.
            let again = await peerDistError { _ = try await stream.complete() }
            #expect(again?.code == 4060)
            #expect(again?.status == 409)
            try await stream.close()
        }
    }

    @Test func tooManyBytesFailTheAppendWith87() async throws {
        try await PeerDistTestServer.with { server in
            let instance = try await server.client.startInstance()
            let stream = try await instance.openStream("short", contentLength: 4)
            let error = await peerDistError { _ = try await stream.append(bytes(5), wait: .seconds(5)) }
            // Refused from the head (413) or ended failed: either way 87.
            if let error {
                #expect(error.code == 87)
            } else {
                Issue.record("five bytes into a four-byte stream must fail")
            }
        }
    }
}

@Suite struct CancelAndClockTests {
    @Test func cancelEndsAParkedWaitWith995() async throws {
        try await PeerDistTestServer.with(.init(clock: .manual)) { server in
            try await server.faults.delay(.seconds(60), kinds: [.publishAddToStream])
            let instance = try await server.client.startInstance()
            let stream = try await instance.openStream("cancelled", contentLength: 3)
            let pending = try await stream.append([1, 2, 3], operation: "slow")
            #expect(pending.isPending)
            #expect(pending.resultCode == 996)

            let before = server.clock.pendingTimers
            let waiter = Task { try await instance.waitOperation("cancelled", "slow", timeout: .seconds(30)) }
            #expect(await server.clock.waitForPendingTimers(atLeast: before + 1))
            let cancelled = try await instance.cancel("cancelled", "slow")
            #expect(cancelled.state == .canceled)
            #expect(cancelled.resultCode == PeerDistError.operationAbortedCode)
            let woken = try await waiter.value
            #expect(woken.state == .canceled)
            #expect(woken.resultCode == 995)
            let completions = try await instance.drain()
            #expect(completions.map(\.operation) == ["slow"])
            #expect(completions.first?.result.code == 995)
            // Cancelling again: no pending operation has that id.
            let again = await peerDistError { try await instance.cancel("cancelled", "slow") }
            #expect(again?.code == 4059)
        }
    }

    /// The operation's delay ends (the clock is advanced past it) while the cancel is in flight:
    /// whichever wins, exactly one result is posted, and everyone sees that one.
    @Test func cancelRacingCompletion() async throws {
        try await PeerDistTestServer.with(.init(clock: .manual)) { server in
            try await server.faults.delay(.milliseconds(1_000), kinds: [.publishAddToStream])
            let instance = try await server.client.startInstance()
            var outcomes: [String: Int] = [:]
            for round in 0..<60 {
                let content = ContentID("race-\(round)")
                let stream = try await instance.openStream(content, contentLength: 1)
                let op = "op\(round)"
                #expect(try await stream.append([UInt8(truncatingIfNeeded: round)], operation: op).isPending)
                async let advanced: Duration = server.clock.advance(by: .milliseconds(1_000))
                async let cancelled: Result<PeerDistOperation, any Error> = {
                    do { return .success(try await instance.cancel(content, op)) } catch { return .failure(error) }
                }()
                _ = try await advanced
                let outcome = await cancelled
                let final = try await instance.waitOperation(content, op)
                #expect(!final.isPending)
                switch outcome {
                case .success(let seen):
                    // Cancel answered with the final state, whichever result stood.
                    #expect(seen.state == final.state)
                    #expect(seen.resultCode == final.resultCode)
                case .failure(let error):
                    // The completion was first and the operation no longer pending.
                    #expect((error as? PeerDistError)?.code == 4059, "\(error)")
                    #expect(final.state == .completed)
                }
                #expect(final.state == .completed ? final.resultCode == 0 : final.resultCode == 995)
                let completions = try await instance.drain().filter { $0.operation == op }
                #expect(completions.count == 1, "round \(round): \(completions)")
                #expect(completions.first?.result.code == final.resultCode)
                outcomes[final.state.rawValue, default: 0] += 1
                try await stream.close()
            }
            #expect(outcomes.values.reduce(0, +) == 60)
        }
    }

    @Test func manualClockTimesOutA30SecondLongPollInMilliseconds() async throws {
        try await PeerDistTestServer.with(.init(clock: .manual)) { server in
            let instance = try await server.client.startInstance()
            let started = ContinuousClock.now
            let before = server.clock.pendingTimers
            let poll = Task { try await instance.dequeue(timeout: .seconds(30)) }
            #expect(await server.clock.waitForPendingTimers(atLeast: before + 1))
            #expect(try await server.clock.advance(by: .milliseconds(29_999)) == .milliseconds(29_999))
            // Not due yet: its timer is still armed (advance runs what is due before it answers).
            #expect(server.clock.pendingTimers == before + 1)
            #expect(try await server.clock.advance(by: .milliseconds(1)) == .seconds(30))
            let batch = try await poll.value
            #expect(batch.timedOut)
            #expect(batch.completions.isEmpty)
            // Alone this takes a few milliseconds; the bound leaves room for the whole suite running
            // in parallel on two cores (12 s of scheduling delay seen), and is still short of the
            // 30 s a real-time timeout would take.
            #expect(ContinuousClock.now - started < .seconds(25))
            #expect(try await server.clock.now() == .seconds(30))
        }
    }

    @Test func theSystemClockCannotBeAdvanced() async throws {
        try await PeerDistTestServer.with { server in
            #expect(!server.clock.isManual)
            let reading = try await server.client.clock()
            #expect(reading.mode == .system)
            let error = await peerDistError { try await server.clock.advance(by: .seconds(1)) }
            #expect(error?.code == 50)
            #expect(error?.error == "ERROR_NOT_SUPPORTED")
            #expect(error?.status == 409)
        }
    }

    @Test func aClosedPortAbandonsItsParkedWaiter() async throws {
        try await PeerDistTestServer.with(.init(clock: .manual)) { server in
            let instance = try await server.client.startInstance()
            let port = try await instance.createPort()
            #expect(port.hasPrefix("port_"))
            let before = server.clock.pendingTimers
            let poll = Task { try await instance.dequeue(port: port, timeout: .seconds(30)) }
            #expect(await server.clock.waitForPendingTimers(atLeast: before + 1))
            try await instance.closePort(port)
            let error = await peerDistError { _ = try await poll.value }
            #expect(error?.code == 735)
            #expect(error?.status == 410)
        }
    }
}

@Suite struct AdminTests {
    @Test func faultsRoundTrip() async throws {
        try await PeerDistTestServer.with { server in
            let set = try await server.faults.delay(.milliseconds(250), kinds: [.publishCompleteStream])
            #expect(set.completionDelay == .milliseconds(250))
            #expect(set.kinds == [.publishCompleteStream])
            #expect(try await server.faults.current() == set)
            try await server.faults.clear()
            #expect(try await server.faults.current().completionDelay == .zero)
            let refused = await peerDistError { try await server.faults.delay(.seconds(100_000)) }
            #expect(refused?.code == 87)
        }
    }

    @Test func policyAndServiceGateCalls() async throws {
        try await PeerDistTestServer.with { server in
            let instance = try await server.client.startInstance()
            _ = try await server.client.api.setPolicy(body: .json(.init(enabled: false))).ok
            #expect(try await server.client.api.getPolicy().ok.body.json.enabled == false)
            let disabled = await peerDistError { _ = try await instance.dequeue() }
            #expect(disabled?.code == 1260)
            _ = try await server.client.api.setPolicy(body: .json(.init(enabled: true))).ok
            _ = try await server.client.api.setService(body: .json(.init(available: false, retryAfterSeconds: 2))).ok
            #expect(try await server.client.api.getService().ok.body.json.available == false)
            let unavailable = await peerDistError { _ = try await instance.dequeue() }
            #expect(unavailable?.code == 4065)
            #expect(unavailable?.status == 503)
            _ = try await server.client.api.setService(body: .json(.init(available: true))).ok
            #expect(try await instance.dequeue().completions.isEmpty)
        }
    }

    @Test func bearerTokenReachesTheServer() async throws {
        try await PeerDistTestServer.with(.init(adminToken: "s3cret-admin-token-0123")) { server in
            // The server's own client carries the admin token.
            let current = try await server.faults.current()
            #expect(current.completionDelay == .zero)
            let anonymous = PeerDistClient(baseURL: server.baseURL)
            let missing = await peerDistError { _ = try await anonymous.faults() }
            #expect(missing?.status == 401)
            #expect(missing?.code == 5)
            let wrong = PeerDistClient(baseURL: server.baseURL, token: "guess")
            let refused = await peerDistError { _ = try await wrong.faults() }
            #expect(refused?.status == 403)
            let right = PeerDistClient(baseURL: server.baseURL, token: "s3cret-admin-token-0123")
            let seen = try await right.faults()
            #expect(seen.completionDelay == .zero)
        }
    }
}

/// The README's example, verbatim, so that it keeps compiling and passing.
@Test func readmeExampleCancelAbortsAParkedWait() async throws {
    try await PeerDistTestServer.with(.init(clock: .manual)) { server in
        let instance = try await server.client.startInstance()
        try await instance.publish("hello", bytes: Array("hello".utf8))

        // Hold appends pending so that one can be waited on, then cancelled.
        try await server.faults.delay(.seconds(60), kinds: [.publishAddToStream])
        let stream = try await instance.openStream("slow", contentLength: 3)
        _ = try await stream.append([1, 2, 3], operation: "append-1")

        let armed = server.clock.pendingTimers
        let wait = Task { try await instance.waitOperation("slow", "append-1", timeout: .seconds(30)) }
        await server.clock.waitForPendingTimers(atLeast: armed + 1)  // the long-poll has parked

        try await instance.cancel("slow", "append-1")
        let ended = try await wait.value
        #expect(ended.state == .canceled)
        #expect(ended.resultCode == 995)  // ERROR_OPERATION_ABORTED
    }
}

/// Retention and status waits follow the manual clock too: nothing expires or times out until
/// the clock passes its deadline, and then it does at once.
@Test func retentionAndStatusWaitsFollowTheManualClock() async throws {
    try await PeerDistTestServer.with(.init(clock: .manual, retention: .seconds(5))) { server in
        let instance = try await server.client.startInstance()
        let done = try await instance.publish("kept-for-5s", bytes: [1, 2, 3])
        let before = server.clock.pendingTimers
        let status = Task {
            try await server.client.api.waitInstanceStatus(path: .init(h: instance.handle), query: .init(since: .available, timeoutMs: 20_000))
                .ok.body.json
        }
        #expect(await server.clock.waitForPendingTimers(atLeast: before + 1))
        try await server.clock.advance(by: .milliseconds(4_999))
        // Still readable just before its retention ends ...
        #expect(try await instance.waitOperation("kept-for-5s", done.id).state == .completed)
        try await server.clock.advance(by: .milliseconds(1))
        // ... and gone once the clock reaches it.
        let gone = await peerDistError { _ = try await instance.waitOperation("kept-for-5s", done.id) }
        #expect(gone?.code == 4059)
        try await server.clock.advance(by: .seconds(15))
        let change = try await status.value
        #expect(change.changed == false)
        #expect(change.status == .available)
    }
}
