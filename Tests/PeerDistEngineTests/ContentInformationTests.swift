import PCCRC
import Testing

@testable import PeerDistEngine

@Suite struct ContentInformationTests {
    @Test func readsWalkTheContentInformationThenNoMore() async throws {
        let fixture = try Fixture()
        let engine = fixture.engine
        let contentId: [UInt8] = [1]
        try await fixture.publish(testBytes(count: 200_000, seed: 1), contentId: contentId)
        let whole = try engine.contentInformation(instance: fixture.instance, contentId: contentId, principal: "alice", version: 1)
        let reader = try fixture.openReader(contentId)
        var collected: [UInt8] = []
        while true {
            let op = try engine.retrieveContentInformation(
                instance: fixture.instance, contentId: contentId, contentInfo: reader, maxBytes: 7)
            #expect(op.kind == .retrieveContentInformation)
            if op.result == .noMore {
                #expect(op.state == .failed && op.bytesTransferred == 0)
                #expect(op.offset == UInt64(whole.count))
                break
            }
            #expect(op.state == .completed)
            #expect(op.offset == UInt64(collected.count))
            #expect(op.bytesTransferred == UInt64(op.buffer?.count ?? -1))
            collected += op.buffer ?? []
        }
        #expect(collected == whole)
        await expectCode(.invalidParameter) {
            try engine.retrieveContentInformation(instance: fixture.instance, contentId: contentId, contentInfo: reader, maxBytes: 0)
        }
        await expectCode(.invalidHandle) {
            try engine.retrieveContentInformation(instance: fixture.instance, contentId: [2], contentInfo: reader, maxBytes: 1)
        }
    }

    @Test func versionSelection() async throws {
        let fixture = try Fixture()
        let engine = fixture.engine
        let v2Content: [UInt8] = [2]
        let v1Content: [UInt8] = [1]
        try await fixture.publish(testBytes(count: 50_000, seed: 2), contentId: v2Content, version: 2)
        try await fixture.publish(testBytes(count: 50_000, seed: 2), contentId: v1Content, version: 1)
        let best = try engine.openContentInformation(instance: fixture.instance, contentId: v2Content, principal: "alice")
        let read = try engine.retrieveContentInformation(
            instance: fixture.instance, contentId: v2Content, contentInfo: best, maxBytes: 1 << 20)
        let v2 = try engine.contentInformation(instance: fixture.instance, contentId: v2Content, principal: "alice", version: 2)
        #expect(read.buffer == v2)
        await expectCode(.contentInfoVersionUnsupported) {
            try engine.openContentInformation(instance: fixture.instance, contentId: v1Content, principal: "alice", minVersion: 2)
        }
        await expectCode(.contentInfoVersionUnsupported) {
            try engine.openContentInformation(instance: fixture.instance, contentId: v1Content, principal: "alice", minVersion: 0)
        }
        await expectCode(.contentInfoVersionUnsupported) {
            try engine.openContentInformation(instance: fixture.instance, contentId: v1Content, principal: "alice", maxVersion: 3)
        }
        await expectCode(.invalidParameter) {
            try engine.openContentInformation(
                instance: fixture.instance, contentId: v1Content, principal: "alice", minVersion: 2, maxVersion: 1)
        }
        await expectCode(.contentInfoVersionUnsupported) {
            try engine.contentInformation(instance: fixture.instance, contentId: v1Content, principal: "alice", version: 3)
        }
    }

    @Test func ranges() async throws {
        let fixture = try Fixture()
        let engine = fixture.engine
        let contentId: [UInt8] = [3]
        let data = testBytes(count: 300_000, seed: 3)
        try await fixture.publish(data, contentId: contentId)
        let reader = try engine.openContentInformation(
            instance: fixture.instance, contentId: contentId, principal: "alice", offset: 70_000, length: 100_000)
        let read = try engine.retrieveContentInformation(
            instance: fixture.instance, contentId: contentId, contentInfo: reader, maxBytes: 1 << 20)
        let expected = try ContentInformation.encode(
            ContentHashes.hashing(data, version: .v1), secret: Fixture.secret, offset: 70_000, length: 100_000)
        #expect(read.buffer == expected)
        await expectCode(.outOfBounds) {
            try engine.openContentInformation(
                instance: fixture.instance, contentId: contentId, principal: "alice", offset: 0, length: 300_001)
        }
        await expectCode(.outOfBounds) {
            try engine.openContentInformation(
                instance: fixture.instance, contentId: contentId, principal: "alice", offset: 5, length: 0)
        }
        await expectCode(.invalidParameter) {
            try engine.openContentInformation(
                instance: fixture.instance, contentId: contentId, principal: "alice", offset: .max, length: 2)
        }
    }

    @Test func notPublished() async throws {
        let fixture = try Fixture()
        let engine = fixture.engine
        let contentId: [UInt8] = [4]
        await expectCode(.notFound) {
            try engine.openContentInformation(instance: fixture.instance, contentId: contentId, principal: "alice")
        }
        await expectCode(.notFound) {
            try engine.contentInformation(instance: fixture.instance, contentId: contentId, principal: "alice", version: 1)
        }
        try await fixture.publish(testBytes(count: 10, seed: 4), contentId: contentId)
        await expectCode(.notFound) {
            try engine.openContentInformation(instance: fixture.instance, contentId: contentId, principal: "bob")
        }
        let reader = try fixture.openReader(contentId)
        try await engine.unpublish(instance: fixture.instance, contentId: contentId, principal: "alice")
        await expectCode(.notFound) {
            try engine.retrieveContentInformation(instance: fixture.instance, contentId: contentId, contentInfo: reader, maxBytes: 1)
        }
    }
}
