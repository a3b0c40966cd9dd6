import Synchronization
import Testing

@testable import PeerDistEngine

/// Cancellation racing every other way an operation can end: natural completion (with and without a
/// fault delay on the real clock), stream close, unpublish and shutdown. Every operation must end
/// exactly once and exactly one completion for it must ever be dequeued.
@Suite(.serialized) struct RaceTests {
    private enum Rival: CaseIterable {
        case none, closeStream, unpublish, shutdown
    }

    private final class Collected: Sendable {
        let completions = Mutex<[Completion]>([])
        var snapshot: [Completion] { completions.withLock { $0 } }
    }

    @Test func cancelRacesEveryOtherEnd() async throws {
        let engine = PeerDistEngine(secret: Fixture.secret)
        var generator = SeededGenerator(seed: 0xC0FFEE)
        let iterations = 4_000
        var cancelWins = 0
        var otherWins = 0
        for iteration in 0..<iterations {
            try engine.setFaults(FaultSettings(completionDelayMs: Int.random(in: 0...3, using: &generator) == 0 ? 1 : 0))
            let instance = try engine.startup(version: 2, principal: "p").handle
            let contentId = [UInt8(truncatingIfNeeded: iteration), UInt8(truncatingIfNeeded: iteration >> 8), 1]
            let stream = try engine.publishStream(
                instance: instance, contentId: contentId, principal: "p", contentLength: 0, version: 1)
            let collected = Collected()
            let collector = Task {
                while true {
                    guard let reservation = try? await engine.dequeue(
                        instance: instance, port: "default", max: 64, timeout: .seconds(10))
                    else { return }
                    collected.completions.withLock { $0 += reservation.completions }
                    reservation.commit()
                }
            }
            let size = Int.random(in: 0...(3 * StreamPipeline.sliceBytes), using: &generator)
            let sink = try engine.beginAppend(
                instance: instance, contentId: contentId, stream: stream, operation: "a", expectedLength: size)
            try await sink.write(testBytes(count: size, seed: UInt64(iteration)))
            sink.finish()
            _ = try engine.completeStream(instance: instance, contentId: contentId, stream: stream, operation: "c")
            let target = Bool.random(using: &generator) ? "a" : "c"
            let rival = Rival.allCases.randomElement(using: &generator) ?? .none
            let spins = Int.random(in: 0...3, using: &generator)
            let rivalSpins = Int.random(in: 0...3, using: &generator)

            let waiter = Task { () -> Result<OperationSnapshot, EngineError> in
                do throws(EngineError) {
                    return .success(try await engine.waitOperation(
                        instance: instance, contentId: contentId, operation: target, timeout: .seconds(10)))
                } catch { return .failure(error) }
            }
            let canceller = Task { () -> Result<OperationSnapshot, EngineError> in
                for _ in 0..<spins { await Task.yield() }
                do throws(EngineError) {
                    return .success(try await engine.cancel(instance: instance, contentId: contentId, operation: target))
                } catch { return .failure(error) }
            }
            let rivalTask = Task { () -> EngineError? in
                for _ in 0..<rivalSpins { await Task.yield() }
                do throws(EngineError) {
                    switch rival {
                    case .none: break
                    case .closeStream: try await engine.closeStream(instance: instance, contentId: contentId, stream: stream)
                    case .unpublish: try await engine.unpublish(instance: instance, contentId: contentId, principal: "p")
                    case .shutdown: try await engine.shutdown(instance: instance)
                    }
                    return nil
                } catch { return error }
            }
            let cancelResult = await canceller.value
            let rivalError = await rivalTask.value
            let waited = await waiter.value

            if let rivalError {
                #expect(rival == .unpublish && rivalError.code == .notFound, "\(rival): \(rivalError)")
            }
            if rival != .shutdown {
                // Both operations end; wait for their completions, then shut down to stop the collector.
                await waitUntil {
                    Set(collected.snapshot.map(\.operation)).isSuperset(of: ["a", "c"])
                }
                try await engine.shutdown(instance: instance)
            }
            await collector.value

            let completions = collected.snapshot
            for id in ["a", "c"] {
                let count = completions.filter { $0.operation == id }.count
                if rival == .shutdown {
                    #expect(count <= 1, "iteration \(iteration): \(count) completions for \(id)")
                } else {
                    #expect(count == 1, "iteration \(iteration): \(count) completions for \(id) (\(rival))")
                }
            }
            let targetCompletion = completions.first { $0.operation == target }
            switch cancelResult {
            case .success(let snapshot):
                cancelWins += 1
                #expect(snapshot.state == .canceled && snapshot.result == .operationAborted)
                if let targetCompletion { #expect(targetCompletion.result == .operationAborted) }
                if case .success(let seen) = waited { #expect(seen.state == .canceled) }
            case .failure(let error):
                otherWins += 1
                let allowed: Set<Win32Error> = rival == .shutdown ? [.operationNotFound, .invalidHandle] : [.operationNotFound]
                #expect(allowed.contains(error.code), "iteration \(iteration): cancel failed with \(error)")
            }
            switch waited {
            case .success(let seen):
                #expect(seen.hasEnded, "iteration \(iteration): the waiter saw \(seen.state)")
                if let targetCompletion { #expect(targetCompletion.result == seen.result) }
            case .failure(let error):
                // Only when the handle or instance vanished before the waiter registered.
                #expect([.operationNotFound, .invalidHandle].contains(error.code), "\(error)")
                #expect(rival == .closeStream || rival == .shutdown)
            }
        }
        print("race: cancel won \(cancelWins), lost \(otherWins) of \(iterations)")
        #expect(cancelWins > 0 && otherWins > 0, "both outcomes occur: \(cancelWins) / \(otherWins)")
        #expect(engine.instanceCount == 0)
    }
}
