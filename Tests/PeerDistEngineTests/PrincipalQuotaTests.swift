import Foundation
import Synchronization
import Testing

@testable import PeerDistEngine

/// Per-principal quotas: past each, 1816 with a retry hint; another principal is unaffected; the
/// room comes back when the use ends. Instance leases on a manual clock.
@Suite struct PrincipalQuotaTests {
    static func engine(_ limits: EngineLimits) -> (PeerDistEngine, ManualClock) {
        let clock = ManualClock()
        return (PeerDistEngine(secret: Fixture.secret, limits: limits, clock: clock, wallClock: clock), clock)
    }

    static func isQuota<T>(_ body: () throws(EngineError) -> T) -> Bool {
        do {
            _ = try body()
            return false
        } catch {
            return error.code == .notEnoughQuota && error.retryAfterSeconds == 1
        }
    }

    @Test func instancesPerPrincipal() throws {
        let (engine, _) = Self.engine(EngineLimits(maxInstancesPerPrincipal: 2))
        let first = try engine.startup(version: 2, principal: "alice")
        _ = try engine.startup(version: 2, principal: "alice")
        #expect(Self.isQuota { () throws(EngineError) in try engine.startup(version: 2, principal: "alice") })
        #expect(try engine.startup(version: 2, principal: "bob").principal == "bob")
        #expect(engine.usage(of: "alice").instances == 2)
        #expect(try engine.instances(of: "alice", pageToken: nil, limit: 10).instances.map(\.handle).contains(first.handle))
        #expect(try engine.instances(of: "bob", pageToken: nil, limit: 10).instances.count == 1)
    }

    @Test func pendingOperationsAndUploadBytesPerPrincipal() async throws {
        let limits = EngineLimits(maxPendingOperationsPerPrincipal: 3, maxUploadBytesInFlightPerPrincipal: 2_000, appendWindowBytes: 1_000)
        let (engine, _) = Self.engine(limits)
        let alice = try engine.startup(version: 2, principal: "alice").handle
        let bob = try engine.startup(version: 2, principal: "bob").handle
        let id = Array("c".utf8)
        func stream(_ instance: String, _ principal: String) throws -> String {
            try engine.publishStream(instance: instance, contentId: id, principal: principal, contentLength: 0, version: 2)
        }
        let a = try stream(alice, "alice")
        // Two appends of 900 declared bytes reserve 1,800 of the 2,000; one of unknown length would
        // reserve a whole window (1,000): refused; one of 200 fits.
        let first = try engine.beginAppend(instance: alice, contentId: id, stream: a, expectedLength: 900)
        let second = try engine.beginAppend(instance: alice, contentId: id, stream: a, expectedLength: 900)
        #expect(engine.usage(of: "alice").uploadBytesInFlight == 1_800)
        #expect(Self.isQuota { () throws(EngineError) in try engine.beginAppend(instance: alice, contentId: id, stream: a, expectedLength: nil) })
        let third = try engine.beginAppend(instance: alice, contentId: id, stream: a, expectedLength: 200)
        // Three pending operations: the fourth of any kind is refused.
        #expect(Self.isQuota { () throws(EngineError) in try engine.completeStream(instance: alice, contentId: id, stream: a) })
        // Bob is unaffected.
        let b = try stream(bob, "bob")
        let bobs = try engine.beginAppend(instance: bob, contentId: id, stream: b, expectedLength: nil)
        #expect(engine.usage(of: "bob") == PrincipalUsage(instances: 1, pendingOperations: 1, openHandles: 1, uploadBytesInFlight: 1_000))
        // Ending the appends gives the room back.
        for (sink, count) in [(first, 900), (second, 900), (third, 200)] {
            try await sink.write([UInt8](repeating: 1, count: count))
            sink.finish()
        }
        bobs.finish()
        await waitUntil { engine.usage(of: "alice").pendingOperations == 0 && engine.usage(of: "bob").pendingOperations == 0 }
        #expect(engine.usage(of: "alice") == PrincipalUsage(instances: 1, openHandles: 1))
        _ = try engine.beginAppend(instance: alice, contentId: id, stream: a, expectedLength: nil)
    }

    @Test func parkedWaitersAndHandlesPerPrincipal() throws {
        let (engine, clock) = Self.engine(EngineLimits(maxParkedWaitersPerPrincipal: 2, maxOpenHandlesPerPrincipal: 2))
        let alice = try engine.startup(version: 2, principal: "alice").handle
        let alice2 = try engine.startup(version: 2, principal: "alice").handle
        let bob = try engine.startup(version: 2, principal: "bob").handle
        final class Results: Sendable {
            let codes = Mutex<[Win32Error?]>([])
            func take(_ result: Result<Reservation, EngineError>) {
                guard case .failure(let error) = result else { return }
                codes.withLock { $0.append(error.code) }
            }
        }
        let results = Results()
        // Parked on two instances of alice: her quota; the third waits nowhere, 1816 at once.
        _ = engine.dequeue(instance: alice, port: "default", max: 1, timeout: .seconds(30), completion: results.take)
        _ = engine.dequeue(instance: alice2, port: "default", max: 1, timeout: .seconds(30), completion: results.take)
        _ = engine.dequeue(instance: alice, port: "default", max: 1, timeout: .seconds(30), completion: results.take)
        #expect(results.codes.withLock { $0 } == [.notEnoughQuota])
        _ = engine.dequeue(instance: bob, port: "default", max: 1, timeout: .seconds(30), completion: results.take)
        #expect(engine.usage(of: "alice").parkedWaiters == 2)
        #expect(engine.usage(of: "bob").parkedWaiters == 1)
        clock.advance(by: .seconds(30))
        #expect(engine.usage(of: "alice").parkedWaiters == 0)

        // Handles: ports across her instances count together; `default` does not count.
        _ = try engine.createPort(instance: alice)
        _ = try engine.createPort(instance: alice2)
        #expect(Self.isQuota { () throws(EngineError) in try engine.createPort(instance: alice) })
        #expect(Self.isQuota { () throws(EngineError) in
            try engine.publishStream(instance: alice, contentId: [1], principal: "alice", contentLength: 0, version: 2)
        })
        _ = try engine.createPort(instance: bob)
    }

    @Test func anIdleInstanceExpiresAsAShutdownWould() async throws {
        let (engine, clock) = Self.engine(EngineLimits(instanceIdleTimeout: .seconds(60), maxWait: .seconds(600)))
        let idle = try engine.startup(version: 2, principal: "alice").handle
        let busy = try engine.startup(version: 2, principal: "alice").handle
        let polled = try engine.startup(version: 2, principal: "alice").handle
        let id = Array("c".utf8)
        let stream = try engine.publishStream(instance: idle, contentId: id, principal: "alice", contentLength: 0, version: 2)
        let pending = try engine.beginAppend(instance: idle, contentId: id, stream: stream, operation: "up", expectedLength: 10)
        // A long-poll parked for longer than the lease keeps its instance alive.
        final class Box: Sendable { let result = Mutex<Result<Reservation, EngineError>?>(nil) }
        let box = Box()
        _ = engine.dequeue(instance: polled, port: "default", max: 1, timeout: .seconds(300)) { r in box.result.withLock { $0 = r } }

        clock.advance(by: .seconds(59))
        _ = try engine.instance(busy)  // any call renews the lease
        clock.advance(by: .seconds(2))
        await waitUntil { (try? engine.instance(idle)) == nil }
        #expect(throws: EngineError.self) { try engine.status(instance: idle) }
        #expect(pending.started.current.state == .canceled)
        #expect(pending.started.current.result == .operationAborted)
        #expect(engine.statistics().expiredInstances == 1)
        _ = try engine.instance(busy)
        _ = try engine.instance(polled)

        clock.advance(by: .seconds(59))
        _ = try engine.instance(polled)
        // Sixty-one seconds after its last call `busy` expires; `polled` lives while its poll is parked.
        clock.advance(by: .seconds(2))
        await waitUntil { (try? engine.instance(busy)) == nil }
        #expect(engine.statistics().expiredInstances == 2)
        clock.advance(by: .seconds(120))
        #expect(box.result.withLock { $0 } == nil)
        _ = try engine.instance(polled)
        #expect(engine.usage(of: "alice") == PrincipalUsage(instances: 1, parkedWaiters: 1))
    }

    @Test func leasesOffWhenTheTimeoutIsZero() throws {
        let (engine, clock) = Self.engine(EngineLimits(instanceIdleTimeout: .zero))
        let h = try engine.startup(version: 2, principal: "alice").handle
        #expect(clock.pendingTimerCount == 0)
        clock.advance(by: .seconds(86_400 * 30))
        _ = try engine.instance(h)
    }
}
