import Foundation
import PCCRC
import Testing

@testable import PeerDistEngine

/// The counts a metrics scrape reads are kept as they change (issue 18 item 6): they always equal
/// what a walk of every instance, port and operation finds, and reading them costs the same with
/// 100,000 operations kept as with none.
@Suite struct EngineTotalsTests {
    /// What `statistics()` used to compute under the engine lock: a walk of everything.
    static func walked(_ engine: PeerDistEngine) -> EngineStatistics {
        engine.state.withLock { s in
            var stats = EngineStatistics()
            stats.instances = s.instances.count
            stats.expiredInstances = s.expiredInstances
            stats.operationsReleasedEarly = s.operationsReleasedEarly
            var memory = MemoryUsage(contentInformation: s.sharedContentInfo.values.reduce(0) { $0 + $1.bytes.count })
            for instance in s.instances.values {
                stats.parkedWaiters += instance.statusWaiters.count
                for port in instance.ports.values {
                    stats.parkedWaiters += port.waiters.count
                    stats.queuedCompletions += port.queue.count
                }
                for op in instance.operations.values {
                    stats.parkedWaiters += op.waiters.count
                    if op.state == .pending { stats.pendingByKind[op.kind, default: 0] += 1 }
                }
                memory = memory + MemoryUsage(
                    retrievalContentInformation: instance.retrievals.values.reduce(0) { $0 + $1.memory.retrievalContentInformation },
                    retrievalData: instance.retrievals.values.reduce(0) { $0 + $1.memory.retrievalData },
                    readBuffers: instance.operations.values.reduce(0) { $0 + $1.bufferBytes + ($1.isPending ? $1.readReservation : 0) },
                    uploads: instance.uploadBytesInFlight)
            }
            stats.memory = memory
            return stats
        }
    }

    static func expectConsistent(_ engine: PeerDistEngine, _ step: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let kept = engine.statistics()
        let walked = Self.walked(engine)
        #expect(kept == walked, "after \(step): kept \(kept), walked \(walked)", sourceLocation: sourceLocation)
    }

    /// Parked dequeues, status and operation waits, queued completions, pending operations and
    /// memory, through every way they end: dequeue, timeout, port close, operation end, shutdown.
    @Test func totalsFollowEveryChange() async throws {
        let f = try Fixture()
        let engine = f.engine
        let id = Array("totals".utf8)
        try await f.publish(Array(repeating: 7, count: 200_000), contentId: id)
        Self.expectConsistent(engine, "publishing")

        // Completed reads queue completions on their ports (one of them closed with them queued).
        let port = try engine.createPort(instance: f.instance)
        let reader = try f.openReader(id)
        let other = try engine.openContentInformation(
            instance: f.instance, contentId: id, principal: f.principal, minVersion: 1, maxVersion: 1, port: port)
        for _ in 0..<3 {
            _ = try engine.retrieveContentInformation(instance: f.instance, contentId: id, contentInfo: reader, maxBytes: 64)
            _ = try engine.retrieveContentInformation(instance: f.instance, contentId: id, contentInfo: other, maxBytes: 64)
        }
        Self.expectConsistent(engine, "reads that ended")
        #expect(engine.statistics().queuedCompletions > 0)
        try engine.closePort(instance: f.instance, port: port)
        Self.expectConsistent(engine, "closing a port with completions queued")
        _ = try await f.drain()
        Self.expectConsistent(engine, "dequeuing")

        // Parked: a dequeue (then its timeout), a status wait, a wait on a delayed operation.
        let armed = f.clock.pendingTimerCount
        let dequeue = Task { try await engine.dequeue(instance: f.instance, port: "default", max: 4, timeout: .seconds(5)) }
        let status = Task { try await engine.waitStatusChange(instance: f.instance, since: .available, timeout: .seconds(50)) }
        try engine.setFaults(FaultSettings(completionDelay: .seconds(30), kinds: [.retrieveContentInformation]))
        let delayed = try engine.retrieveContentInformation(instance: f.instance, contentId: id, contentInfo: reader, maxBytes: 64)
        let wait = Task { try await f.waitEnded(contentId: id, operation: delayed.id) }
        await waitUntil { f.clock.pendingTimerCount >= armed + 4 }
        #expect(engine.statistics().parkedWaiters == 3)
        #expect(engine.statistics().pendingByKind[.retrieveContentInformation] == 1)
        Self.expectConsistent(engine, "parking")
        f.clock.advance(by: .seconds(5))
        _ = try await dequeue.value.completions
        Self.expectConsistent(engine, "a dequeue's timeout")
        f.clock.advance(by: .seconds(25))
        #expect(try await wait.value.state == .completed)
        Self.expectConsistent(engine, "a delayed operation's end")
        #expect(engine.statistics().pendingByKind[.retrieveContentInformation] == nil)

        try await engine.shutdown(instance: f.instance)
        _ = try? await status.value
        Self.expectConsistent(engine, "shutdown")
        #expect(engine.statistics() == EngineStatistics())
    }

    /// A scrape reads kept counts: with 100,000 operations kept across ten instances it costs a
    /// small fraction of the walk it replaced (which visits every one under the engine lock).
    @Test func aScrapeDoesNotWalkTheOperations() async throws {
        let f = try Fixture()
        let engine = f.engine
        let id = Array("many".utf8)
        try await f.publish(Array(repeating: 1, count: 1_000), contentId: id)
        var instances = [f.instance]
        for _ in 1..<10 { instances.append(try engine.startup(version: 2, principal: f.principal).handle) }
        for instance in instances {
            let reader = try engine.openContentInformation(
                instance: instance, contentId: id, principal: f.principal, minVersion: 1, maxVersion: 1)
            while (try? engine.retrieveContentInformation(instance: instance, contentId: id, contentInfo: reader, maxBytes: 1)) != nil {}
        }
        let kept = engine.state.withLock { $0.instances.values.reduce(0) { $0 + $1.operations.count } }
        #expect(kept >= 99_000)
        Self.expectConsistent(engine, "100,000 operations")

        func median(_ body: () -> Void) -> Duration {
            let clock = ContinuousClock()
            let samples = (0..<15).map { _ in clock.measure(body) }.sorted()
            return samples[samples.count / 2]
        }
        let scrape = median { _ = engine.statistics() }
        let walk = median { _ = Self.walked(engine) }
        #expect(scrape * 20 < walk, "a scrape took \(scrape), a walk \(walk)")
    }
}
