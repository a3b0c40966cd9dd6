import Foundation
import Testing

@testable import PeerDistEngine

/// Nothing an operation leaves in the engine outlives its retention: many appends on short-lived
/// streams, closed, their completions dequeued, and the clock past retention leave every count at
/// rest, without any further call.
@Suite struct ResidencyTests {
    final class WeakBox: @unchecked Sendable {
        weak var object: AnyObject?
        init(_ object: AnyObject?) { self.object = object }
    }

    static let atRest = ResidentCounts(instances: 1, ports: 1)

    @Test func shortLivedStreamsLeaveNothingBehindAfterRetention() async throws {
        let f = try Fixture(limits: EngineLimits(retention: .seconds(2)))
        let engine = f.engine
        var pipelines: [WeakBox] = []
        for round in 0..<150 {
            let id = Array("content-\(round % 7)".utf8)
            let stream = try engine.publishStream(
                instance: f.instance, contentId: id, principal: f.principal, contentLength: 0, version: 2)
            pipelines.append(WeakBox(engine.pipelineObject(instance: f.instance, stream: stream)))
            for _ in 0..<2 {
                let sink = try engine.beginAppend(instance: f.instance, contentId: id, stream: stream, expectedLength: 100)
                try await sink.write(testBytes(count: 100, seed: UInt64(round)))
                sink.finish()
                #expect(try await f.waitEnded(contentId: id, operation: sink.operation.id).state == .completed)
            }
            // Every third stream is closed with an append still pending (its body unfinished).
            var unfinished: AppendSink?
            if round % 3 == 0 {
                unfinished = try engine.beginAppend(instance: f.instance, contentId: id, stream: stream, expectedLength: 10)
                try await unfinished?.write([1, 2, 3])
            }
            // Every fifth stream (without an unfinished append) is completed and then unpublished.
            if round % 5 == 1, unfinished == nil {
                let complete = try engine.completeStream(instance: f.instance, contentId: id, stream: stream)
                #expect(try await f.waitEnded(contentId: id, operation: complete.id).state == .completed)
            }
            try await engine.closeStream(instance: f.instance, contentId: id, stream: stream)
            if let unfinished {
                #expect(unfinished.started.current.state == .canceled)
            }
            unfinished = nil
            if round % 5 == 1, round % 3 != 0 {
                try await engine.unpublish(instance: f.instance, contentId: id, principal: f.principal)
            }
            _ = try await f.drain()
        }
        // Content-information reads on a handle that is then closed.
        let id = Array("read-content".utf8)
        let published = try await f.publish(testBytes(count: 5_000, seed: 9), contentId: id)
        try await engine.closeStream(instance: f.instance, contentId: id, stream: published)
        let reader = try f.openReader(id)
        for _ in 0..<20 {
            _ = try engine.retrieveContentInformation(instance: f.instance, contentId: id, contentInfo: reader, maxBytes: 64)
        }
        try await engine.closeContentInformation(instance: f.instance, contentId: id, contentInfo: reader)
        try await engine.unpublish(instance: f.instance, contentId: id, principal: f.principal)
        for port in try #require(Optional(portsOtherThanDefault(engine, f.instance))) {
            _ = try await f.drain(port: port)
            try engine.closePort(instance: f.instance, port: port)
        }
        _ = try await f.drain()

        f.clock.advance(by: .seconds(3))
        let counts = engine.residentCounts()
        #expect(counts == Self.atRest, "\(counts)")
        // The principal's counts are back at rest too: they are kept as the calls go.
        #expect(engine.usage(of: f.principal) == PrincipalUsage(instances: 1))
        // The one timer left is the live instance's lease check.
        #expect(f.clock.pendingTimerCount == 1)
        await waitUntil { pipelines.allSatisfy { $0.object == nil } }
    }

    private func portsOtherThanDefault(_ engine: PeerDistEngine, _ instance: String) -> [String] {
        engine.state.withLock { $0.instances[instance]?.ports.keys.filter { $0 != "default" } ?? [] }
    }

    /// Ended operations are forgotten at their retention's end even when no call comes.
    @Test func retentionSweepRunsWithoutCalls() async throws {
        let f = try await ReadFixture(limits: EngineLimits(retention: .seconds(5)))
        for _ in 0..<10 { try f.read() }
        #expect(f.engine.residentCounts().operations > 10)
        f.clock.advance(by: .seconds(6))
        #expect(f.engine.residentCounts().operations == 0)
        #expect(f.engine.residentCounts().idIndex == 0)
        #expect(f.engine.residentCounts().retentionQueue == 0)
    }

    /// A caller that keeps its sinks after finishing them (the HTTP layer holding an exchange)
    /// keeps no per-append entry in the stream's pipeline.
    @Test func finishedSinksThatAreKeptHoldNoPipelineEntry() async throws {
        let f = try Fixture()
        let id = Array("kept-sinks".utf8)
        let stream = try f.engine.publishStream(
            instance: f.instance, contentId: id, principal: f.principal, contentLength: 0, version: 2)
        var sinks: [AppendSink] = []
        for round in 0..<50 {
            let sink = try f.engine.beginAppend(instance: f.instance, contentId: id, stream: stream, expectedLength: 10)
            try await sink.write(testBytes(count: 10, seed: UInt64(round)))
            sink.finish()
            #expect(try await f.waitEnded(contentId: id, operation: sink.operation.id).state == .completed)
            sinks.append(sink)
        }
        #expect(f.engine.residentCounts().pipelineEntries == 0)
        withExtendedLifetime(sinks) {}
    }
}
