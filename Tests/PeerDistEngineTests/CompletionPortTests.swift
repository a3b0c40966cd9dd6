import Synchronization
import Testing

@testable import PeerDistEngine

@Suite struct CompletionPortTests {
    @Test func returnsQueuedCompletionsAtOnceInBatches() async throws {
        let fixture = try await ReadFixture()
        let engine = fixture.engine
        var ids: [String] = []
        for _ in 0..<5 { ids.append(try fixture.read().id) }
        let first = try await engine.dequeue(instance: fixture.instance, port: "default", max: 3, timeout: .seconds(5))
        first.commit()
        #expect(first.timedOut == false)
        #expect(first.completions.map(\.operation) == Array(ids[0..<3]))
        let second = try await engine.dequeue(instance: fixture.instance, port: "default", max: 3, timeout: .zero)
        second.commit()
        #expect(second.completions.map(\.operation) == Array(ids[3..<5]))
        let sequences = (first.completions + second.completions).map(\.sequence)
        #expect(sequences == sequences.sorted() && Set(sequences).count == 5)
        let completion = try #require(first.completions.first)
        #expect(completion.key == 0)
        #expect(completion.kind == .retrieveContentInformation)
        #expect(completion.result == .success)
        #expect(completion.bytesTransferred == 10)
        #expect(completion.contentId == fixture.contentId)
    }

    @Test func maxOutsideOneTo1024IsInvalid() async throws {
        let fixture = try Fixture()
        for max in [0, 1_025, -1] {
            await expectCode(.invalidParameter) {
                try await fixture.engine.dequeue(instance: fixture.instance, port: "default", max: max, timeout: .zero)
            }
        }
        await expectCode(.invalidParameter) {
            try await fixture.engine.dequeue(instance: fixture.instance, port: "default", max: 1, timeout: .seconds(-1))
        }
        await expectCode(.invalidHandle) {
            try await fixture.engine.dequeue(instance: fixture.instance, port: "port_nope", max: 1, timeout: .zero)
        }
    }

    @Test func waitersAreServedFirstComeFirstServed() async throws {
        let fixture = try await ReadFixture()
        let engine = fixture.engine
        let instance = fixture.instance
        var waiters: [Task<Reservation, any Error>] = []
        for index in 0..<3 {
            waiters.append(Task { try await engine.dequeue(instance: instance, port: "default", max: 10, timeout: .seconds(30)) })
            await waitUntil { engine.parkedDequeueCount(instance: instance, port: "default") == index + 1 }
        }
        var ids: [String] = []
        for _ in 0..<3 { ids.append(try fixture.read().id) }
        for (index, waiter) in waiters.enumerated() {
            let reservation = try await waiter.value
            reservation.commit()
            #expect(reservation.completions.map(\.operation) == [ids[index]])
        }
    }

    @Test func timeoutAnswersAnEmptyBatch() async throws {
        let fixture = try Fixture(limits: EngineLimits(maxWait: .seconds(55)))
        let engine = fixture.engine
        let instance = fixture.instance
        let immediate = try await engine.dequeue(instance: instance, port: "default", max: 1, timeout: .zero)
        #expect(immediate.timedOut && immediate.completions.isEmpty)

        let waiter = Task { try await engine.dequeue(instance: instance, port: "default", max: 1, timeout: .seconds(300)) }
        await waitUntil { engine.parkedDequeueCount(instance: instance, port: "default") == 1 }
        fixture.clock.advance(by: .seconds(54))
        #expect(engine.parkedDequeueCount(instance: instance, port: "default") == 1)
        fixture.clock.advance(by: .seconds(1))  // capped at maxWait
        let reservation = try await waiter.value
        #expect(reservation.timedOut)
        #expect(reservation.completions.isEmpty)
    }

    @Test func closingAPortAbandonsItsWaiters() async throws {
        let fixture = try Fixture()
        let engine = fixture.engine
        let instance = fixture.instance
        let port = try engine.createPort(instance: instance)
        let waiter = Task { try await engine.dequeue(instance: instance, port: port, max: 1, timeout: .seconds(30)) }
        await waitUntil { engine.parkedDequeueCount(instance: instance, port: port) == 1 }
        try engine.closePort(instance: instance, port: port)
        #expect(engineCode(await waiter.result) == .abandonedWait0)
        await expectCode(.invalidHandle) {
            try await engine.dequeue(instance: instance, port: port, max: 1, timeout: .zero)
        }
        await expectCode(.invalidHandle) { try engine.closePort(instance: instance, port: port) }
        await expectCode(.invalidParameter) { try engine.closePort(instance: instance, port: "default") }
    }

    @Test func waiterCapAnswersQuotaWithRetryAfter() async throws {
        let fixture = try Fixture(limits: EngineLimits(maxWaitersPerPort: 2, quotaRetryAfterSeconds: 3))
        let engine = fixture.engine
        let instance = fixture.instance
        let waiters = (0..<2).map { _ in
            Task { try await engine.dequeue(instance: instance, port: "default", max: 1, timeout: .seconds(30)) }
        }
        await waitUntil { engine.parkedDequeueCount(instance: instance, port: "default") == 2 }
        let error = await expectCode(.notEnoughQuota) {
            try await engine.dequeue(instance: instance, port: "default", max: 1, timeout: .seconds(30))
        }
        #expect(error?.retryAfterSeconds == 3)
        // A zero-timeout poll does not park, so it is not refused.
        _ = try await engine.dequeue(instance: instance, port: "default", max: 1, timeout: .zero)
        fixture.clock.advance(by: .seconds(30))
        for waiter in waiters { #expect(try await waiter.value.timedOut) }
    }

    @Test func requeuePutsCompletionsBackAtTheFront() async throws {
        let fixture = try await ReadFixture()
        let engine = fixture.engine
        let ids = try (0..<3).map { _ in try fixture.read().id }
        let reserved = try await engine.dequeue(instance: fixture.instance, port: "default", max: 2, timeout: .zero)
        #expect(reserved.completions.map(\.operation) == Array(ids[0..<2]))
        reserved.requeue()
        reserved.commit()  // no effect after requeue
        let again = try await engine.dequeue(instance: fixture.instance, port: "default", max: 10, timeout: .zero)
        again.commit()
        #expect(again.completions.map(\.operation) == ids)
        #expect(again.completions.map(\.sequence) == again.completions.map(\.sequence).sorted())
    }

    @Test func requeueHandsToAParkedWaiter() async throws {
        let fixture = try await ReadFixture()
        let engine = fixture.engine
        let instance = fixture.instance
        let id = try fixture.read().id
        let reserved = try await engine.dequeue(instance: instance, port: "default", max: 1, timeout: .zero)
        let waiter = Task { try await engine.dequeue(instance: instance, port: "default", max: 1, timeout: .seconds(30)) }
        await waitUntil { engine.parkedDequeueCount(instance: instance, port: "default") == 1 }
        reserved.requeue()
        let handed = try await waiter.value
        handed.commit()
        #expect(handed.completions.map(\.operation) == [id])
    }

    @Test func droppedReservationIsRequeued() async throws {
        let fixture = try await ReadFixture()
        let engine = fixture.engine
        let id = try fixture.read().id
        do {
            let reserved = try await engine.dequeue(instance: fixture.instance, port: "default", max: 1, timeout: .zero)
            #expect(reserved.completions.count == 1)
        }
        let again = try await engine.dequeue(instance: fixture.instance, port: "default", max: 1, timeout: .zero)
        again.commit()
        #expect(again.completions.map(\.operation) == [id])
    }

    @Test func cancelledTaskLeavesWithoutTakingACompletion() async throws {
        let fixture = try await ReadFixture()
        let engine = fixture.engine
        let instance = fixture.instance
        let waiter = Task { try await engine.dequeue(instance: instance, port: "default", max: 1, timeout: .seconds(30)) }
        await waitUntil { engine.parkedDequeueCount(instance: instance, port: "default") == 1 }
        waiter.cancel()
        #expect(engineCode(await waiter.result) == .operationAborted)
        #expect(engine.parkedDequeueCount(instance: instance, port: "default") == 0)
        let id = try fixture.read().id
        #expect(engine.queuedCompletionCount(instance: instance, port: "default") == 1)
        let next = try await engine.dequeue(instance: instance, port: "default", max: 1, timeout: .zero)
        next.commit()
        #expect(next.completions.map(\.operation) == [id])

        // Cancelled before it could register: no waiter is left behind either.
        let early = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await engine.dequeue(instance: instance, port: "default", max: 1, timeout: .seconds(30))
        }
        #expect(engineCode(await early.result) == .operationAborted)
        #expect(engine.parkedDequeueCount(instance: instance, port: "default") == 0)
    }

    /// The callback form of dequeue (parked HTTP long-polls): served during the call when
    /// completions wait, parked otherwise and served by the next completion, and called off
    /// without taking one.
    @Test func callbackDequeueIsServedOnceAndCanBeCalledOff() async throws {
        let fixture = try await ReadFixture()
        let engine = fixture.engine
        let instance = fixture.instance
        final class Box: Sendable {
            let results = Mutex<[Result<Reservation, EngineError>]>([])
            func take(_ result: Result<Reservation, EngineError>) { results.withLock { $0.append(result) } }
            var count: Int { results.withLock { $0.count } }
            var last: Result<Reservation, EngineError>? { results.withLock { $0.last } }
        }

        // Queued already: answered during the call.
        let queued = try fixture.read().id
        let immediate = Box()
        _ = engine.dequeue(instance: instance, port: "default", max: 4, timeout: .seconds(30), completion: immediate.take)
        #expect(immediate.count == 1)
        let first = try #require(try immediate.last?.get())
        #expect(first.completions.map(\.operation) == [queued])
        first.commit()

        // Parked, then served by the next completion; calling off afterwards changes nothing.
        let parked = Box()
        let callOff = engine.dequeue(instance: instance, port: "default", max: 4, timeout: .seconds(30), completion: parked.take)
        #expect(parked.count == 0)
        #expect(engine.parkedDequeueCount(instance: instance, port: "default") == 1)
        let next = try fixture.read().id
        await waitUntil { parked.count == 1 }
        callOff()
        #expect(parked.count == 1)
        let served = try #require(try parked.last?.get())
        #expect(served.completions.map(\.operation) == [next])
        served.commit()

        // Called off while parked: 995 at once, the waiter gone, and the next completion stays queued.
        let abandoned = Box()
        let leave = engine.dequeue(instance: instance, port: "default", max: 4, timeout: .seconds(30), completion: abandoned.take)
        #expect(engine.parkedDequeueCount(instance: instance, port: "default") == 1)
        leave()
        leave()
        #expect(abandoned.count == 1)
        #expect(engineCode(abandoned.last!.mapError { $0 as any Error }) == .operationAborted)
        #expect(engine.parkedDequeueCount(instance: instance, port: "default") == 0)
        _ = try fixture.read()
        #expect(engine.queuedCompletionCount(instance: instance, port: "default") == 1)

        // Timed out on the engine clock: an empty reservation.
        let timing = Box()
        _ = engine.dequeue(instance: instance, port: "other", max: 1, timeout: .seconds(1), completion: timing.take)
        #expect(engineCode(try #require(timing.last).mapError { $0 as any Error }) == .invalidHandle)
        _ = engine.dequeue(instance: instance, port: "default", max: 4, timeout: .zero) { result in _ = result.map { $0.commit() } }
        _ = engine.dequeue(instance: instance, port: "default", max: 1, timeout: .seconds(1), completion: timing.take)
        fixture.clock.advance(by: .seconds(1))
        #expect(timing.count == 2)
        let empty = try #require(try timing.last?.get())
        #expect(empty.timedOut && empty.completions.isEmpty)
    }

    @Test func completionsFollowTheHandlesPortAndKey() async throws {
        let fixture = try Fixture()
        let engine = fixture.engine
        let contentId: [UInt8] = [1, 2, 3]
        try await fixture.publish(testBytes(count: 100, seed: 3), contentId: contentId)
        let port = try engine.createPort(instance: fixture.instance)
        let reader = try engine.openContentInformation(
            instance: fixture.instance, contentId: contentId, principal: "alice", port: port, key: 42)
        let op = try engine.retrieveContentInformation(
            instance: fixture.instance, contentId: contentId, contentInfo: reader, maxBytes: 4)
        #expect(try await fixture.drain().isEmpty)
        let completions = try await fixture.drain(port: port)
        #expect(completions.map(\.operation) == [op.id])
        #expect(completions.first?.key == 42)
    }

    @Test func portBound() async throws {
        let fixture = try Fixture(limits: EngineLimits(maxPortsPerInstance: 2))
        _ = try fixture.engine.createPort(instance: fixture.instance)
        await expectCode(.notEnoughQuota) { try fixture.engine.createPort(instance: fixture.instance) }
    }
}
