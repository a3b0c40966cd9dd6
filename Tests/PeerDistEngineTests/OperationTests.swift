import Testing

@testable import PeerDistEngine

@Suite struct CancellationTests {
    /// A read that the fault delay keeps pending until the clock moves.
    private func delayedRead(_ fixture: ReadFixture, id: String = "r1") throws -> OperationSnapshot {
        try fixture.engine.setFaults(FaultSettings(completionDelayMs: 1_000, kinds: [.retrieveContentInformation]))
        let op = try fixture.read(id: id)
        #expect(op.state == .pending)
        #expect(op.result == .ioIncomplete)
        return op
    }

    @Test func cancelPostsAndWakesWaitersBeforeReturning() async throws {
        let fixture = try await ReadFixture()
        let engine = fixture.engine
        let instance = fixture.instance
        let contentId = fixture.contentId
        let op = try delayedRead(fixture)
        let portWaiter = Task { try await engine.dequeue(instance: instance, port: "default", max: 8, timeout: .seconds(30)) }
        let opWaiter = Task {
            try await engine.waitOperation(instance: instance, contentId: contentId, operation: op.id, timeout: .seconds(30))
        }
        await waitUntil {
            engine.parkedDequeueCount(instance: instance, port: "default") == 1
                && engine.operationWaiterCount(instance: instance, operation: op.id) == 1
        }
        let canceled = try await engine.cancel(instance: instance, contentId: contentId, operation: op.id)
        // Posted and handed to the parked waiter, and the op waiter woken, before cancel returned.
        #expect(engine.parkedDequeueCount(instance: instance, port: "default") == 0)
        #expect(engine.operationWaiterCount(instance: instance, operation: op.id) == 0)
        #expect(canceled.state == .canceled)
        #expect(canceled.result == .operationAborted)
        #expect(canceled.endedAt != nil)

        let reservation = try await portWaiter.value
        reservation.commit()
        #expect(reservation.completions.map(\.operation) == [op.id])
        #expect(reservation.completions.first?.result == .operationAborted)
        let woken = try await opWaiter.value
        #expect(woken.state == .canceled && woken.result == .operationAborted)

        // A later read of it shows the cancellation; the delayed natural end loses.
        fixture.clock.advance(by: .seconds(2))
        let later = try engine.operation(instance: instance, contentId: contentId, operation: op.id)
        #expect(later.state == .canceled)
        #expect(try await fixture.base.drain().isEmpty, "exactly one completion")

        // Second cancel: not pending any more.
        await expectCode(.operationNotFound) {
            try await engine.cancel(instance: instance, contentId: contentId, operation: op.id)
        }
    }

    @Test func anOperationThatEndedFirstKeepsItsResult() async throws {
        let fixture = try await ReadFixture()
        let op = try fixture.read(id: "done")
        #expect(op.state == .completed)
        await expectCode(.operationNotFound) {
            try await fixture.engine.cancel(instance: fixture.instance, contentId: fixture.contentId, operation: "done")
        }
        let after = try fixture.engine.operation(instance: fixture.instance, contentId: fixture.contentId, operation: "done")
        #expect(after.state == .completed && after.result == .success)
        #expect(try await fixture.base.drain().count == 1)
    }

    @Test func naturalEndAfterTheDelayWins() async throws {
        let fixture = try await ReadFixture()
        let op = try delayedRead(fixture)
        fixture.clock.advance(by: .milliseconds(999))
        #expect(try fixture.engine.operation(instance: fixture.instance, contentId: fixture.contentId, operation: op.id).state == .pending)
        fixture.clock.advance(by: .milliseconds(1))
        let ended = try fixture.engine.operation(instance: fixture.instance, contentId: fixture.contentId, operation: op.id)
        #expect(ended.state == .completed)
        #expect(ended.buffer?.count == 10)
        await expectCode(.operationNotFound) {
            try await fixture.engine.cancel(instance: fixture.instance, contentId: fixture.contentId, operation: op.id)
        }
    }

    @Test func unknownOtherContentAndMalformed() async throws {
        let fixture = try await ReadFixture()
        let engine = fixture.engine
        let op = try delayedRead(fixture)
        await expectCode(.operationNotFound) {
            try await engine.cancel(instance: fixture.instance, contentId: [0xFF], operation: op.id)
        }
        await expectCode(.operationNotFound) {
            try await engine.cancel(instance: fixture.instance, contentId: fixture.contentId, operation: "nope")
        }
        await expectCode(.invalidParameter) {
            try await engine.cancel(instance: fixture.instance, contentId: [], operation: op.id)
        }
        await expectCode(.invalidParameter) {
            try await engine.cancel(instance: fixture.instance, contentId: Array(repeating: 1, count: 1_025), operation: op.id)
        }
        for bad in ["", "a b", "é", String(repeating: "x", count: 65), "a/b"] {
            await expectCode(.invalidParameter) {
                try await engine.cancel(instance: fixture.instance, contentId: fixture.contentId, operation: bad)
            }
        }
        await expectCode(.invalidHandle) {
            try await engine.cancel(instance: "inst_nope", contentId: fixture.contentId, operation: op.id)
        }
        // Still pending after all that.
        #expect(try engine.operation(instance: fixture.instance, contentId: fixture.contentId, operation: op.id).state == .pending)
    }

    @Test func implicitCancelByClosingTheHandle() async throws {
        let fixture = try await ReadFixture()
        let engine = fixture.engine
        let op = try delayedRead(fixture)
        let opWaiter = Task {
            try await engine.waitOperation(
                instance: fixture.instance, contentId: fixture.contentId, operation: op.id, timeout: .seconds(30))
        }
        await waitUntil { engine.operationWaiterCount(instance: fixture.instance, operation: op.id) == 1 }
        try await engine.closeContentInformation(instance: fixture.instance, contentId: fixture.contentId, contentInfo: fixture.reader)
        #expect(try await opWaiter.value.state == .canceled)
        let completions = try await fixture.base.drain()
        #expect(completions.map(\.result) == [.operationAborted])
        // The aborted operation stays readable after its handle closed (GetOverlappedResult can
        // confirm the abort), at both of its resources, until its retention runs out.
        let after = try engine.operation(instance: fixture.instance, contentId: fixture.contentId, operation: op.id)
        #expect(after.state == .canceled && after.result == .operationAborted)
        #expect(try engine.operation(instance: fixture.instance, operation: op.id).state == .canceled)
        await expectCode(.invalidHandle) { try fixture.read() }
        fixture.clock.advance(by: engine.limits.retention)
        await expectCode(.operationNotFound) {
            try engine.operation(instance: fixture.instance, contentId: fixture.contentId, operation: op.id)
        }
    }

    @Test func shutdownAbortsPendingOperationsBeforeReturning() async throws {
        let fixture = try await ReadFixture()
        let engine = fixture.engine
        let op = try delayedRead(fixture)
        let portWaiter = Task {
            try await engine.dequeue(instance: fixture.instance, port: "default", max: 8, timeout: .seconds(30))
        }
        let secondWaiter = Task {
            try await engine.dequeue(instance: fixture.instance, port: "default", max: 8, timeout: .seconds(30))
        }
        let statusWaiter = Task {
            try await engine.waitStatusChange(instance: fixture.instance, since: .available, timeout: .seconds(30))
        }
        await waitUntil {
            engine.parkedDequeueCount(instance: fixture.instance, port: "default") == 2
                && engine.statusWaiterCount(instance: fixture.instance) == 1
        }
        try await engine.shutdown(instance: fixture.instance)
        let results = [await portWaiter.result, await secondWaiter.result]
        let delivered = results.compactMap { try? $0.get() }
        #expect(delivered.count == 1, "the first waiter gets the 995 completion")
        #expect(delivered.first?.completions.map(\.operation) == [op.id])
        #expect(delivered.first?.completions.first?.result == .operationAborted)
        #expect(results.compactMap(engineCode) == [.abandonedWait0], "the other one gets 735")
        #expect(engineCode(await statusWaiter.result) == .operationAborted)
    }
}

@Suite struct OperationTests {
    @Test func callerChosenIdsAreUniqueAmongPendingOnes() async throws {
        let fixture = try await ReadFixture()
        try fixture.engine.setFaults(FaultSettings(completionDelayMs: 10, kinds: [.retrieveContentInformation]))
        let first = try fixture.read(id: "mine")
        #expect(first.id == "mine")
        await expectCode(.alreadyExists) { try fixture.read(id: "mine") }
        fixture.clock.advance(by: .milliseconds(10))
        // Ended: the name may be used again, replacing the retained one.
        let second = try fixture.read(id: "mine")
        #expect(second.createdAt > first.createdAt || second.state == .pending)
        await expectCode(.invalidParameter) { try fixture.read(id: "") }
        await expectCode(.invalidParameter) { try fixture.read(id: "no spaces") }
        let generated = try fixture.read()
        #expect(generated.id.hasPrefix("op_"))
        #expect(try fixture.engine.operation(instance: fixture.instance, operation: generated.id) == generated)
        await expectCode(.operationNotFound) { try fixture.engine.operation(instance: fixture.instance, operation: "none") }
    }

    @Test func waitOperationTimesOutWithThePendingSnapshot() async throws {
        let fixture = try await ReadFixture()
        let engine = fixture.engine
        try engine.setFaults(FaultSettings(completionDelayMs: 60_000))
        let op = try fixture.read()
        let now = try await engine.waitOperation(
            instance: fixture.instance, contentId: fixture.contentId, operation: op.id, timeout: .zero)
        #expect(now.state == .pending)
        let waiter = Task {
            try await engine.waitOperation(
                instance: fixture.instance, contentId: fixture.contentId, operation: op.id, timeout: .seconds(5))
        }
        await waitUntil { engine.operationWaiterCount(instance: fixture.instance, operation: op.id) == 1 }
        fixture.clock.advance(by: .seconds(5))
        let timedOut = try await waiter.value
        #expect(timedOut.state == .pending && timedOut.result == .ioIncomplete && timedOut.endedAt == nil)
        fixture.clock.advance(by: .seconds(55))
        let ended = try await engine.waitOperation(
            instance: fixture.instance, contentId: fixture.contentId, operation: op.id, timeout: .seconds(5))
        #expect(ended.state == .completed)
    }

    @Test func cancelledWaitLeavesNoWaiter() async throws {
        let fixture = try await ReadFixture()
        let engine = fixture.engine
        try engine.setFaults(FaultSettings(completionDelayMs: 60_000))
        let op = try fixture.read()
        let waiter = Task {
            try await engine.waitOperation(
                instance: fixture.instance, contentId: fixture.contentId, operation: op.id, timeout: .seconds(5))
        }
        await waitUntil { engine.operationWaiterCount(instance: fixture.instance, operation: op.id) == 1 }
        waiter.cancel()
        #expect(engineCode(await waiter.result) == .operationAborted)
        #expect(engine.operationWaiterCount(instance: fixture.instance, operation: op.id) == 0)
    }

    @Test func retentionExpiry() async throws {
        let fixture = try await ReadFixture(limits: EngineLimits(retention: .seconds(600)))
        let op = try fixture.read()
        fixture.clock.advance(by: .seconds(599))
        #expect(try fixture.engine.operation(instance: fixture.instance, contentId: fixture.contentId, operation: op.id).state == .completed)
        fixture.clock.advance(by: .seconds(1))
        await expectCode(.operationNotFound) {
            try fixture.engine.operation(instance: fixture.instance, contentId: fixture.contentId, operation: op.id)
        }
    }

    @Test func operationBoundForgetsTheOldestEndedOnesFirst() async throws {
        // The publish in the fixture makes 2 operations (append, complete), both ended.
        let fixture = try await ReadFixture(limits: EngineLimits(maxOperationsPerInstance: 4, retention: .seconds(600)))
        let engine = fixture.engine
        let publishing = try engine.listOperations(instance: fixture.instance).operations.map(\.id)
        #expect(publishing.count == 2)
        var reads: [String] = []
        for _ in 0..<4 { reads.append(try fixture.read().id) }
        // The bound is 4: the two publishing operations, the oldest ended, made room.
        #expect(try engine.listOperations(instance: fixture.instance).operations.map(\.id) == reads)
        for id in publishing {
            await expectCode(.operationNotFound) { try engine.operation(instance: fixture.instance, operation: id) }
        }
        #expect(engine.statistics().operationsReleasedEarly == 2)
        // Held pending, the new ones push out the ended reads, then the bound refuses.
        try engine.setFaults(FaultSettings(completionDelayMs: 60_000))
        for n in 0..<4 { #expect(try fixture.read(id: "held-\(n)").state == .pending) }
        #expect(engine.statistics().operationsReleasedEarly == 6)
        let error = await expectCode(.notEnoughQuota) { try fixture.read() }
        #expect(error?.retryAfterSeconds != nil)
        // A pending one that ends makes room again.
        _ = try await engine.cancel(instance: fixture.instance, contentId: fixture.contentId, operation: "held-0")
        try fixture.read(id: "after")
    }

    @Test func listsArePagedInCreationOrderWithAStateFilter() async throws {
        let fixture = try await ReadFixture()
        let engine = fixture.engine
        var ids: [String] = []
        for _ in 0..<5 { ids.append(try fixture.read().id) }
        try engine.setFaults(FaultSettings(completionDelayMs: 1_000))
        let pending = try fixture.read(id: "pending-one")
        var seen: [String] = []
        var token: String?
        repeat {
            let page = try engine.listOperations(
                instance: fixture.instance, contentId: fixture.contentId, pageSize: 2, pageToken: token)
            #expect(page.operations.count <= 2)
            #expect(page.operations.allSatisfy { $0.buffer == nil })
            seen += page.operations.map(\.id)
            token = page.nextPageToken
        } while token != nil
        // Two publishing operations first, then the reads in creation order.
        #expect(seen.count == 8)
        #expect(Array(seen.suffix(6)) == ids + [pending.id])
        let pendingOnly = try engine.listOperations(instance: fixture.instance, state: .pending)
        #expect(pendingOnly.operations.map(\.id) == [pending.id])
        #expect(pendingOnly.nextPageToken == nil)
        let otherContent = try engine.listOperations(instance: fixture.instance, contentId: [0x42])
        #expect(otherContent.operations.isEmpty)
        await expectCode(.invalidParameter) { try engine.listOperations(instance: fixture.instance, pageToken: "garbage") }
        await expectCode(.invalidParameter) { try engine.listOperations(instance: fixture.instance, pageSize: 0) }
    }

    @Test func faultsApplyOnlyToTheirKinds() async throws {
        let fixture = try await ReadFixture()
        try fixture.engine.setFaults(FaultSettings(completionDelayMs: 1_000, kinds: [.publishAddToStream]))
        #expect(try fixture.read().state == .completed)
        try fixture.engine.setFaults(FaultSettings())
        #expect(fixture.engine.faults.completionDelayMs == 0)
        await expectCode(.invalidParameter) { try fixture.engine.setFaults(FaultSettings(completionDelayMs: -1)) }
    }
}
