import Dispatch
import Foundation
import Synchronization
import Testing

@testable import PeerDistEngine

/// A stream's pipeline (and the hashers in it) lives no longer than its stream: once the stream is
/// closed or its instance shut down, or the engine is released, nothing keeps it, whatever hashing
/// work is still queued for it. The hashing queue is held busy so that a drain is queued behind it
/// at the moment of the close, deterministically (one hashing worker, so every stream shares it).
@Suite struct PipelineLifetimeTests {
    final class WeakBox: @unchecked Sendable {
        weak var object: AnyObject?
        init(_ object: AnyObject?) { self.object = object }
    }

    /// Holds a hashing queue busy until `release()` (or deinit, if a test stopped early).
    final class QueueBlocker: Sendable {
        private let gate = DispatchSemaphore(value: 0)
        private let released = Atomic(false)

        init(_ queue: DispatchQueue) {
            let gate = gate
            queue.async { gate.wait() }
        }

        func release() {
            if !released.exchange(true, ordering: .relaxed) { gate.signal() }
        }

        deinit { release() }
    }

    enum Variant: CaseIterable {
        /// A finished append whose drain is queued.
        case finishedAppend
        /// A finished append and a complete, queued.
        case appendAndComplete
        /// An append whose body is still arriving (its sink kept over the close).
        case unfinishedAppend
    }

    enum Ending: CaseIterable { case shutdown, closeStream }

    static let limits = EngineLimits(hashingWorkers: 1)

    /// Opens a V2 stream, returns it with its pipeline held weakly and a blocker on its queue.
    static func openBlockedStream(_ engine: PeerDistEngine, instance: String, contentId: [UInt8])
        throws -> (stream: String, pipeline: WeakBox, blocker: QueueBlocker)
    {
        let stream = try engine.publishStream(
            instance: instance, contentId: contentId, principal: "alice", contentLength: 0, version: 2)
        let pipeline = try #require(engine.pipelineObject(instance: instance, stream: stream) as? StreamPipeline)
        return (stream, WeakBox(pipeline), QueueBlocker(pipeline.queue))
    }

    @Test(arguments: Ending.allCases)
    func pipelineIsFreedWhenItsStreamEndsWithHashingQueued(_ ending: Ending) async throws {
        let clock = ManualClock()
        let engine = PeerDistEngine(secret: Fixture.secret, limits: Self.limits, clock: clock, wallClock: clock)
        let kept = try engine.startup(version: 2, principal: "alice").handle
        for round in 0..<30 {
            let variant = Variant.allCases[round % Variant.allCases.count]
            let instance = ending == .shutdown ? try engine.startup(version: 2, principal: "alice").handle : kept
            let id = Array("lifetime-\(round)".utf8)
            let (stream, pipeline, blocker) = try Self.openBlockedStream(engine, instance: instance, contentId: id)
            var sink: AppendSink? = try engine.beginAppend(
                instance: instance, contentId: id, stream: stream, expectedLength: 4_096)
            let append = try #require(sink?.started)
            try await sink?.write(testBytes(count: variant == .unfinishedAppend ? 1_000 : 4_096, seed: UInt64(round)))
            var complete: StartedOperation?
            if variant != .unfinishedAppend {
                sink?.finish()
                sink = nil
            }
            if variant == .appendAndComplete {
                complete = try engine.startCompleteStream(instance: instance, contentId: id, stream: stream)
            }
            switch ending {
            case .shutdown: try await engine.shutdown(instance: instance)
            case .closeStream: try await engine.closeStream(instance: instance, contentId: id, stream: stream)
            }
            // The cancel semantics: every pending operation ended with 995 before the call returned,
            // and a writer still holding its sink is told so.
            #expect(append.current.state == .canceled, "\(variant) \(ending)")
            #expect(append.current.result == .operationAborted)
            if let complete { #expect(complete.current.state == .canceled) }
            if let writer = sink {
                await #expect(throws: EngineError.self) { try await writer.write([1]) }
                sink = nil
            }
            // The drain is still queued behind the blocker, yet the pipeline is gone.
            #expect(pipeline.object == nil, "round \(round) \(variant) \(ending): the pipeline outlived its stream")
            blocker.release()
        }
        withExtendedLifetime(engine) {}
    }

    /// Racy: closing while hashing is in flight, many times; every pipeline is freed once the close
    /// has returned and the hashing it stopped has let go.
    @Test func pipelinesAreFreedAfterClosesRacingHashing() async throws {
        let f = try Fixture()
        var pipelines: [WeakBox] = []
        let payload = testBytes(count: 256 * 1_024, seed: 3)
        for round in 0..<60 {
            let id = Array("race-\(round)".utf8)
            let stream = try f.engine.publishStream(
                instance: f.instance, contentId: id, principal: f.principal, contentLength: 0, version: 2)
            pipelines.append(WeakBox(f.engine.pipelineObject(instance: f.instance, stream: stream)))
            let sink = try f.engine.beginAppend(
                instance: f.instance, contentId: id, stream: stream, expectedLength: payload.count)
            try await sink.write(payload)
            sink.finish()
            if round % 2 == 0 { _ = try f.engine.completeStream(instance: f.instance, contentId: id, stream: stream) }
            try await f.engine.closeStream(instance: f.instance, contentId: id, stream: stream)
            let state = sink.started.current.state
            #expect(state == .canceled || state == .completed)
        }
        await waitUntil { pipelines.allSatisfy { $0.object == nil } }
        #expect(f.engine.residentCounts().streams == 0)
    }

    /// An engine released while a stream is open with work queued on it is freed, and its pipeline
    /// with it: the pipeline's jobs do not keep the engine (no engine ↔ pipeline cycle).
    @Test func engineReleasedWithAnOpenStreamFreesItsPipeline() async throws {
        let clock = ManualClock()
        var engine: PeerDistEngine? = PeerDistEngine(
            secret: Fixture.secret, limits: Self.limits, clock: clock, wallClock: clock)
        let instance = try #require(try engine?.startup(version: 2, principal: "alice").handle)
        let id = Array("released".utf8)
        let (stream, pipeline, blocker) = try Self.openBlockedStream(try #require(engine), instance: instance, contentId: id)
        do {
            let sink = try #require(try engine?.beginAppend(instance: instance, contentId: id, stream: stream, expectedLength: 100))
            try await sink.write(testBytes(count: 100, seed: 1))
            sink.finish()
            _ = try engine?.completeStream(instance: instance, contentId: id, stream: stream)
        }
        let released = WeakBox(engine)
        engine = nil
        #expect(released.object == nil, "the engine outlived its last reference")
        #expect(pipeline.object == nil, "the pipeline of an open stream outlived its engine")
        blocker.release()
    }
}
