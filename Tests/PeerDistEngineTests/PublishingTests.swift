import PCCRC
import Testing

@testable import PeerDistEngine

@Suite struct PublishingTests {
    private func expected(_ data: [UInt8], version: PCCRCVersion) throws -> [UInt8] {
        try ContentInformation.encode(
            ContentHashes.hashing(data, version: version), secret: Fixture.secret, offset: 0, length: 0)
    }

    @Test(arguments: [1, 2])
    func appendsInAnySlicingEqualHashingTheWhole(version: Int) async throws {
        var generator = SeededGenerator(seed: UInt64(version))
        let count = version == 1 ? 700_000 : 200_000
        let data = testBytes(count: count, seed: 11)
        var slices: [Int] = []
        var left = count
        while left > 0 {
            let size = min(left, Int.random(in: 0...150_000, using: &generator))
            slices.append(size)
            left -= size
        }
        let fixture = try Fixture()
        let contentId = Array("sliced".utf8)
        try await fixture.publish(
            data, contentId: contentId, version: version, slices: slices, chunk: Int.random(in: 1...70_000, using: &generator))
        let v1 = try fixture.engine.contentInformation(
            instance: fixture.instance, contentId: contentId, principal: "alice", version: 1)
        #expect(v1 == (try expected(data, version: .v1)))
        let info = try fixture.engine.publication(instance: fixture.instance, contentId: contentId, principal: "alice")
        #expect(info.length == UInt64(count))
        if version == 2 {
            #expect(info.versions == [1, 2])
            let v2 = try fixture.engine.contentInformation(
                instance: fixture.instance, contentId: contentId, principal: "alice", version: 2)
            #expect(v2 == (try expected(data, version: .v2)))
        } else {
            #expect(info.versions == [1])
            await expectCode(.contentInfoVersionUnsupported) {
                try fixture.engine.contentInformation(
                    instance: fixture.instance, contentId: contentId, principal: "alice", version: 2)
            }
        }
    }

    @Test func lengthRules() async throws {
        let fixture = try Fixture()
        let engine = fixture.engine
        let instance = fixture.instance
        let contentId: [UInt8] = [1]
        let data = testBytes(count: 100, seed: 5)
        let stream = try engine.publishStream(
            instance: instance, contentId: contentId, principal: "alice", contentLength: 100, version: 1)
        // Declared body past the content length: synchronous 87, no operation made.
        let past = await expectCode(.invalidParameter) {
            try engine.beginAppend(instance: instance, contentId: contentId, stream: stream, expectedLength: 101)
        }
        #expect(past?.isTooLarge == true)
        #expect(try engine.listOperations(instance: instance).operations.isEmpty)
        // A body longer than its own declared length.
        let short = try engine.beginAppend(instance: instance, contentId: contentId, stream: stream, expectedLength: 2)
        await expectCode(.invalidParameter) { try await short.write([1, 2, 3]) }
        short.finish()
        #expect(try await fixture.waitEnded(contentId: contentId, operation: short.operation.id).result == .invalidParameter)
        // A chunked body past the declared content length fails its operation with 87; nothing added.
        let chunked = try engine.beginAppend(instance: instance, contentId: contentId, stream: stream, expectedLength: nil)
        try await chunked.write(data)
        try await chunked.write([0])
        chunked.finish()
        let failed = try await fixture.waitEnded(contentId: contentId, operation: chunked.operation.id)
        #expect(failed.state == .failed && failed.result == .invalidParameter && failed.bytesTransferred == 0)
        // Fewer bytes than declared: complete is refused synchronously.
        let half = try engine.beginAppend(instance: instance, contentId: contentId, stream: stream, expectedLength: 50)
        try await half.write(Array(data[0..<50]))
        half.finish()
        #expect(try await fixture.waitEnded(contentId: contentId, operation: half.operation.id).bytesTransferred == 50)
        await expectCode(.invalidParameter) { try engine.completeStream(instance: instance, contentId: contentId, stream: stream) }
        let rest = try engine.beginAppend(instance: instance, contentId: contentId, stream: stream, expectedLength: 50)
        try await rest.write(Array(data[50..<100]))
        rest.finish()
        // Complete queued behind the append: it sees all 100 bytes.
        let complete = try engine.completeStream(instance: instance, contentId: contentId, stream: stream, operation: "done")
        #expect(complete.state == .pending && complete.kind == .publishCompleteStream)
        #expect(try await fixture.waitEnded(contentId: contentId, operation: "done").state == .completed)
        let v1 = try engine.contentInformation(instance: instance, contentId: contentId, principal: "alice", version: 1)
        #expect(v1 == (try expected(data, version: .v1)))
        // Second complete, and appends after it.
        await expectCode(.alreadyCompleted) { try engine.completeStream(instance: instance, contentId: contentId, stream: stream) }
        await expectCode(.alreadyCompleted) {
            try engine.beginAppend(instance: instance, contentId: contentId, stream: stream, expectedLength: 0)
        }
        // Wrong content for the stream: a foreign handle.
        await expectCode(.invalidHandle) { try engine.completeStream(instance: instance, contentId: [2], stream: stream) }
    }

    @Test func contentAndPublicationBounds() async throws {
        let fixture = try Fixture(limits: EngineLimits(maxPublicationsPerInstance: 1, maxContentLength: 100))
        let engine = fixture.engine
        let tooLong = await expectCode(.invalidParameter) {
            try engine.publishStream(instance: fixture.instance, contentId: [1], principal: "alice", contentLength: 101, version: 1)
        }
        #expect(tooLong?.isTooLarge == true)
        let stream = try engine.publishStream(
            instance: fixture.instance, contentId: [1], principal: "alice", contentLength: 0, version: 1)
        // A declared body longer than the content limit is refused before any byte is read.
        let tooLongBody = await expectCode(.invalidParameter) {
            try engine.beginAppend(instance: fixture.instance, contentId: [1], stream: stream, expectedLength: 101)
        }
        #expect(tooLongBody?.isTooLarge == true)
        let sink = try engine.beginAppend(instance: fixture.instance, contentId: [1], stream: stream, expectedLength: nil)
        try await sink.write(testBytes(count: 101, seed: 1))
        sink.finish()
        let ended = try await fixture.waitEnded(contentId: [1], operation: sink.operation.id)
        #expect(ended.result == .notEnoughQuota && ended.bytesTransferred == 0)
        try await fixture.publish(testBytes(count: 100, seed: 2), contentId: [2])
        await expectCode(.notEnoughQuota) {
            try engine.publishStream(instance: fixture.instance, contentId: [3], principal: "alice", contentLength: 0, version: 1)
        }
        try await engine.unpublish(instance: fixture.instance, contentId: [2], principal: "alice")
        _ = try engine.publishStream(instance: fixture.instance, contentId: [3], principal: "alice", contentLength: 0, version: 1)
    }

    @Test func publicationsArePerPrincipal() async throws {
        let fixture = try Fixture()
        let engine = fixture.engine
        let contentId: [UInt8] = [3, 3]
        try await fixture.publish(testBytes(count: 10, seed: 1), contentId: contentId)
        await expectCode(.alreadyExists) {
            try engine.publishStream(instance: fixture.instance, contentId: contentId, principal: "alice", contentLength: 0, version: 1)
        }
        await expectCode(.notFound) { try engine.publication(instance: fixture.instance, contentId: contentId, principal: "bob") }
        try await fixture.publish(testBytes(count: 20, seed: 2), contentId: contentId, principal: "bob")
        #expect(try engine.publication(instance: fixture.instance, contentId: contentId, principal: "bob").length == 20)
        #expect(try engine.publication(instance: fixture.instance, contentId: contentId, principal: "alice").length == 10)
        try await engine.unpublish(instance: fixture.instance, contentId: contentId, principal: "alice")
        await expectCode(.notFound) { try engine.publication(instance: fixture.instance, contentId: contentId, principal: "alice") }
        #expect(try engine.publication(instance: fixture.instance, contentId: contentId, principal: "bob").length == 20)
        await expectCode(.notFound) { try await engine.unpublish(instance: fixture.instance, contentId: contentId, principal: "alice") }
        await expectCode(.invalidParameter) { try await engine.unpublish(instance: fixture.instance, contentId: [], principal: "alice") }
        // The name is free again.
        try await fixture.publish(testBytes(count: 30, seed: 3), contentId: contentId)
    }

    @Test func closeStreamAbortsPendingOperationsButDoesNotUnpublish() async throws {
        let fixture = try Fixture()
        let engine = fixture.engine
        let contentId: [UInt8] = [4]
        let stream = try await fixture.publish(testBytes(count: 10, seed: 1), contentId: contentId)
        let other = try engine.publishStream(
            instance: fixture.instance, contentId: [5], principal: "alice", contentLength: 0, version: 1)
        let sink = try engine.beginAppend(instance: fixture.instance, contentId: [5], stream: other, expectedLength: nil)
        try await sink.write([1, 2, 3])
        try await engine.closeStream(instance: fixture.instance, contentId: [5], stream: other)
        let completions = try await fixture.drain()
        #expect(completions.map(\.operation) == [sink.operation.id])
        #expect(completions.first?.result == .operationAborted)
        await expectCode(.operationAborted) { try await sink.write([4]) }
        // Readable after the close, as on Windows after CloseStreamHandle.
        let aborted = try engine.operation(instance: fixture.instance, contentId: [5], operation: sink.operation.id)
        #expect(aborted.state == .canceled && aborted.result == .operationAborted)
        try await engine.closeStream(instance: fixture.instance, contentId: contentId, stream: stream)
        #expect(try engine.publication(instance: fixture.instance, contentId: contentId, principal: "alice").length == 10)
    }

    @Test func unpublishAbortsPendingOperationsOfThatContent() async throws {
        let fixture = try Fixture()
        let engine = fixture.engine
        let contentId: [UInt8] = [6]
        let stream = try engine.publishStream(
            instance: fixture.instance, contentId: contentId, principal: "alice", contentLength: 0, version: 1)
        let sink = try engine.beginAppend(instance: fixture.instance, contentId: contentId, stream: stream, expectedLength: nil)
        try await engine.unpublish(instance: fixture.instance, contentId: contentId, principal: "alice")
        #expect(try engine.operation(instance: fixture.instance, contentId: contentId, operation: sink.operation.id).state == .canceled)
        await expectCode(.operationAborted) { try await sink.write([1]) }
        // The stream stays usable.
        let next = try engine.beginAppend(instance: fixture.instance, contentId: contentId, stream: stream, expectedLength: 1)
        try await next.write([1])
        next.finish()
        let complete = try engine.completeStream(instance: fixture.instance, contentId: contentId, stream: stream)
        #expect(try await fixture.waitEnded(contentId: contentId, operation: complete.id).state == .completed)
        #expect(try engine.publication(instance: fixture.instance, contentId: contentId, principal: "alice").length == 1)
    }
}

/// A small deterministic generator for test randomness.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed &* 0x2545_F491_4F6C_DD1D | 1 }

    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
}
