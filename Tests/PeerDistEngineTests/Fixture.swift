import Foundation
import PCCRC
import Testing

@testable import PeerDistEngine

/// An engine on a `ManualClock` with one instance, plus helpers to publish and make completions.
struct Fixture {
    static let secret = ServerSecret(keyBytes: Array("engine test secret".utf8))

    let engine: PeerDistEngine
    let clock: ManualClock
    let instance: String
    let principal = "alice"

    init(limits: EngineLimits = EngineLimits()) throws {
        clock = ManualClock()
        engine = PeerDistEngine(secret: Self.secret, limits: limits, clock: clock, wallClock: clock)
        instance = try engine.startup(version: 2, principal: "alice").handle
    }

    /// Publishes `data` through a stream bound to its own port (so `default` stays empty); returns the
    /// stream handle. Appends use `slices` (sizes of successive appends), each written in `chunk`-byte writes.
    @discardableResult
    func publish(
        _ data: [UInt8], contentId: [UInt8], version: Int = 1, principal: String? = nil, slices: [Int]? = nil,
        chunk: Int = 4_096
    ) async throws -> String {
        let port = try engine.createPort(instance: instance)
        let stream = try engine.publishStream(
            instance: instance, contentId: contentId, principal: principal ?? self.principal,
            contentLength: UInt64(data.count), version: version, port: port, key: 7)
        var offset = 0
        for size in slices ?? [data.count] {
            let part = Array(data[offset..<offset + size])
            offset += size
            let sink = try engine.beginAppend(
                instance: instance, contentId: contentId, stream: stream, expectedLength: part.count)
            var index = 0
            while index < part.count {
                let end = min(index + chunk, part.count)
                try await sink.write(Array(part[index..<end]))
                index = end
            }
            sink.finish()
            let ended = try await waitEnded(contentId: contentId, operation: sink.operation.id)
            #expect(ended.state == .completed)
            #expect(ended.bytesTransferred == UInt64(part.count))
        }
        #expect(offset == data.count)
        let complete = try engine.completeStream(instance: instance, contentId: contentId, stream: stream)
        let ended = try await waitEnded(contentId: contentId, operation: complete.id)
        #expect(ended.state == .completed, "complete ended \(ended.result)")
        return stream
    }

    /// Waits (without a clock timeout: the ManualClock never fires it) for an operation to end.
    func waitEnded(contentId: [UInt8], operation: String) async throws -> OperationSnapshot {
        try await engine.waitOperation(
            instance: instance, contentId: contentId, operation: operation, timeout: .seconds(50))
    }

    /// Opens a reader over a published content on the default port.
    func openReader(_ contentId: [UInt8], version: Int = 1) throws -> String {
        try engine.openContentInformation(
            instance: instance, contentId: contentId, principal: principal, minVersion: version, maxVersion: version)
    }

    /// Everything queued on `port` now (dequeue with timeout 0 until empty, committing).
    func drain(port: String = "default") async throws -> [Completion] {
        var all: [Completion] = []
        while true {
            let reservation = try await engine.dequeue(instance: instance, port: port, max: 1_024, timeout: .zero)
            reservation.commit()
            if reservation.completions.isEmpty { return all }
            all += reservation.completions
        }
    }
}

/// A published content with a reader on the default port: each `read()` posts one completion there.
struct ReadFixture {
    let base: Fixture
    let contentId: [UInt8]
    let reader: String

    init(limits: EngineLimits = EngineLimits()) async throws {
        base = try Fixture(limits: limits)
        contentId = Array("content-1".utf8)
        try await base.publish(testBytes(count: 1_000, seed: 1), contentId: contentId)
        reader = try base.openReader(contentId)
    }

    var engine: PeerDistEngine { base.engine }
    var instance: String { base.instance }
    var clock: ManualClock { base.clock }

    @discardableResult
    func read(id: String? = nil, maxBytes: Int = 10) throws -> OperationSnapshot {
        try engine.retrieveContentInformation(
            instance: instance, contentId: contentId, contentInfo: reader, operation: id, maxBytes: maxBytes)
    }
}

/// Deterministic pseudo-random bytes.
func testBytes(count: Int, seed: UInt64) -> [UInt8] {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    var bytes = [UInt8]()
    bytes.reserveCapacity(count)
    for _ in 0..<count {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        bytes.append(UInt8(truncatingIfNeeded: state >> 24))
    }
    return bytes
}

/// Expects `body` to throw an `EngineError` with `code`; returns it.
@discardableResult
func expectCode<R>(
    _ code: Win32Error, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> R
) async -> EngineError? {
    do {
        _ = try await body()
        Issue.record("expected \(code), got success", sourceLocation: sourceLocation)
        return nil
    } catch let error as EngineError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected \(code), got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// Polls `condition` until it holds (a readiness wait, never a correctness sleep); fails after 10 s.
func waitUntil(
    sourceLocation: SourceLocation = #_sourceLocation, _ condition: () -> Bool
) async {
    let deadline = ContinuousClock.now + .seconds(10)
    while !condition() {
        if ContinuousClock.now > deadline {
            Issue.record("condition not met within 10 s", sourceLocation: sourceLocation)
            return
        }
        try? await Task.sleep(for: .milliseconds(1))
    }
}

/// The Win32 code of a task's failure (`nil` when it succeeded or failed otherwise).
func engineCode<T>(_ result: Result<T, any Error>) -> Win32Error? {
    guard case .failure(let error) = result else { return nil }
    return (error as? EngineError)?.code
}
