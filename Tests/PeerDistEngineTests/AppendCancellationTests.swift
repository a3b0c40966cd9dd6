import PCCRC
import Testing

@testable import PeerDistEngine

/// Cancelling appends while they run: prompt, rolled back, bounded memory.
@Suite(.serialized) struct AppendCancellationTests {
    private func v1(_ data: [UInt8]) throws -> [UInt8] {
        try ContentInformation.encode(
            ContentHashes.hashing(data, version: .v1), secret: Fixture.secret, offset: 0, length: 0)
    }

    /// Appends `data` in one operation and completes the stream; returns the V1 content information.
    private func finishPublication(_ fixture: Fixture, contentId: [UInt8], stream: String, data: [UInt8]) async throws
        -> [UInt8]
    {
        let sink = try fixture.engine.beginAppend(
            instance: fixture.instance, contentId: contentId, stream: stream, expectedLength: data.count)
        try await sink.write(data)
        sink.finish()
        #expect(try await fixture.waitEnded(contentId: contentId, operation: sink.operation.id).state == .completed)
        let complete = try fixture.engine.completeStream(instance: fixture.instance, contentId: contentId, stream: stream)
        #expect(try await fixture.waitEnded(contentId: contentId, operation: complete.id).state == .completed)
        return try fixture.engine.contentInformation(
            instance: fixture.instance, contentId: contentId, principal: "alice", version: 1)
    }

    @Test func cancellingASlowlyFedAppendIsImmediateAndRollsBack() async throws {
        let fixture = try Fixture()
        let engine = fixture.engine
        let contentId: [UInt8] = [1]
        let stream = try engine.publishStream(
            instance: fixture.instance, contentId: contentId, principal: "alice", contentLength: 0, version: 1)
        let sink = try engine.beginAppend(instance: fixture.instance, contentId: contentId, stream: stream, expectedLength: nil)
        try await sink.write(testBytes(count: 100_000, seed: 1))
        let started = ContinuousClock.now
        let canceled = try await engine.cancel(instance: fixture.instance, contentId: contentId, operation: sink.operation.id)
        let elapsed = ContinuousClock.now - started
        #expect(canceled.state == .canceled)
        // The cancel returned although the body never ended: it does not wait for input. How fast
        // it returns is a benchmark figure (Benchmarks/engine_bench.py), not a unit-test bound;
        // this only catches a hang (the whole suite on two cores was seen to delay it 11 s).
        #expect(elapsed < .seconds(30), "cancel took \(elapsed)")
        await expectCode(.operationAborted) { try await sink.write([1]) }
        let data = testBytes(count: 70_000, seed: 2)
        #expect(try await finishPublication(fixture, contentId: contentId, stream: stream, data: data) == (try v1(data)))
    }

    @Test func cancellingALargeAppendStopsHashingPromptly() async throws {
        let fixture = try Fixture()
        let engine = fixture.engine
        let instance = fixture.instance
        let contentId: [UInt8] = [2]
        let stream = try engine.publishStream(
            instance: instance, contentId: contentId, principal: "alice", contentLength: 0, version: 1)
        let sink = try engine.beginAppend(instance: instance, contentId: contentId, stream: stream, expectedLength: nil)
        let chunk = [UInt8](repeating: 0xA5, count: 1 << 20)
        // A body that never ends: the writer stops only when the cancel fails its writes (a single
        // large write could be all taken and hashed before a late cancel on a loaded machine).
        let writer = Task { while true { try await sink.write(chunk) } }
        try await Task.sleep(for: .milliseconds(5))  // let hashing get going (correctness does not depend on it)
        let started = ContinuousClock.now
        let canceled = try await engine.cancel(instance: instance, contentId: contentId, operation: sink.operation.id)
        let elapsed = ContinuousClock.now - started
        #expect(canceled.state == .canceled)
        // The endless body ends aborted: the cancel stopped the work instead of waiting for it.
        // Latency is a benchmark figure; this bound only catches a hang.
        #expect(elapsed < .seconds(30), "cancel took \(elapsed)")
        #expect(engineCode(await writer.result) == .operationAborted)
        let data = testBytes(count: 1_000, seed: 3)
        #expect(try await finishPublication(fixture, contentId: contentId, stream: stream, data: data) == (try v1(data)))
    }

    @Test func cancelDuringAFaultDelayWinsAndRollsBack() async throws {
        let fixture = try Fixture()
        let engine = fixture.engine
        let contentId: [UInt8] = [3]
        try engine.setFaults(FaultSettings(completionDelayMs: 10_000, kinds: [.publishAddToStream]))
        let stream = try engine.publishStream(
            instance: fixture.instance, contentId: contentId, principal: "alice", contentLength: 0, version: 1)
        let sink = try engine.beginAppend(instance: fixture.instance, contentId: contentId, stream: stream, expectedLength: 5)
        try await sink.write([1, 2, 3, 4, 5])
        sink.finish()
        // Hashed, but held pending by the fault until the clock reaches 10 s.
        await waitUntil { engine.isHeldByFault(instance: fixture.instance, operation: sink.operation.id) }
        let waited = try await engine.waitOperation(
            instance: fixture.instance, contentId: contentId, operation: sink.operation.id, timeout: .zero)
        #expect(waited.state == .pending)
        let canceled = try await engine.cancel(instance: fixture.instance, contentId: contentId, operation: sink.operation.id)
        #expect(canceled.state == .canceled)
        fixture.clock.advance(by: .seconds(11))
        #expect(try engine.operation(instance: fixture.instance, contentId: contentId, operation: sink.operation.id).state == .canceled)
        try engine.setFaults(FaultSettings())
        let data = testBytes(count: 500, seed: 4)
        #expect(try await finishPublication(fixture, contentId: contentId, stream: stream, data: data) == (try v1(data)))
        let completions = try await fixture.drain()
        #expect(completions.filter { $0.operation == sink.operation.id }.map(\.result) == [.operationAborted])
    }

    @Test func cancellingAPendingCompletePublishesNothing() async throws {
        let fixture = try Fixture()
        let engine = fixture.engine
        let contentId: [UInt8] = [4]
        try engine.setFaults(FaultSettings(completionDelayMs: 10_000, kinds: [.publishCompleteStream]))
        let stream = try engine.publishStream(
            instance: fixture.instance, contentId: contentId, principal: "alice", contentLength: 0, version: 1)
        let complete = try engine.completeStream(instance: fixture.instance, contentId: contentId, stream: stream)
        _ = try await engine.cancel(instance: fixture.instance, contentId: contentId, operation: complete.id)
        fixture.clock.advance(by: .seconds(11))
        await expectCode(.notFound) { try engine.publication(instance: fixture.instance, contentId: contentId, principal: "alice") }
        // It may be retried.
        try engine.setFaults(FaultSettings())
        let again = try engine.completeStream(instance: fixture.instance, contentId: contentId, stream: stream)
        #expect(try await fixture.waitEnded(contentId: contentId, operation: again.id).state == .completed)
        #expect(try engine.publication(instance: fixture.instance, contentId: contentId, principal: "alice").length == 0)
    }

    @Test func memoryIsBoundedByTheWindow() async throws {
        let window = 64 * 1_024
        let fixture = try Fixture(limits: EngineLimits(appendWindowBytes: window))
        let engine = fixture.engine
        let contentId: [UInt8] = [5]
        let chunk = 16 * 1_024
        let data = testBytes(count: 8 << 20, seed: 9)
        let stream = try engine.publishStream(
            instance: fixture.instance, contentId: contentId, principal: "alice", contentLength: UInt64(data.count), version: 1)
        let sink = try engine.beginAppend(instance: fixture.instance, contentId: contentId, stream: stream, expectedLength: data.count)
        var offset = 0
        while offset < data.count {
            try await sink.write(Array(data[offset..<offset + chunk]))
            offset += chunk
        }
        sink.finish()
        #expect(try await fixture.waitEnded(contentId: contentId, operation: sink.operation.id).bytesTransferred == UInt64(data.count))
        let peak = try #require(engine.peakBufferedBytes(instance: fixture.instance, stream: stream))
        #expect(peak <= window + chunk, "peak \(peak)")
    }

    @Test func droppingASinkAbortsItsOperation() async throws {
        let fixture = try Fixture()
        let engine = fixture.engine
        let contentId: [UInt8] = [6]
        let stream = try engine.publishStream(
            instance: fixture.instance, contentId: contentId, principal: "alice", contentLength: 0, version: 1)
        var id = ""
        do {
            let sink = try engine.beginAppend(instance: fixture.instance, contentId: contentId, stream: stream, expectedLength: nil)
            id = sink.operation.id
            try await sink.write([1, 2])
        }
        let ended = try await fixture.waitEnded(contentId: contentId, operation: id)
        #expect(ended.state == .canceled)
        let aborted = try engine.beginAppend(instance: fixture.instance, contentId: contentId, stream: stream, expectedLength: nil)
        await aborted.abort()
        #expect(try engine.operation(instance: fixture.instance, contentId: contentId, operation: aborted.operation.id).state == .canceled)
    }
}
