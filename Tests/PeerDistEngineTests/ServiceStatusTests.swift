import Testing

@testable import PeerDistEngine

@Suite struct ServiceStatusTests {
    @Test func orderOfChecks() async throws {
        let fixture = try Fixture()
        let engine = fixture.engine
        let instance = fixture.instance
        // Disabled beats unavailable, unknown handles and malformed parameters.
        await engine.setPolicy(enabled: false)
        try await engine.setService(available: false, retryAfterSeconds: 9)
        await expectCode(.accessDisabledByPolicy) {
            try await engine.cancel(instance: "inst_unknown", contentId: [], operation: "")
        }
        await expectCode(.accessDisabledByPolicy) { try engine.createPort(instance: instance) }
        // Unavailable beats unknown handles and malformed parameters, with Retry-After.
        await engine.setPolicy(enabled: true)
        let unavailable = await expectCode(.serviceUnavailable) {
            try await engine.cancel(instance: "inst_unknown", contentId: [], operation: "")
        }
        #expect(unavailable?.retryAfterSeconds == 9)
        // Unknown handle beats malformed parameters.
        try await engine.setService(available: true)
        await expectCode(.invalidHandle) {
            try await engine.cancel(instance: "inst_unknown", contentId: [], operation: "")
        }
        await expectCode(.invalidHandle) {
            try engine.beginAppend(instance: instance, contentId: [], stream: "strm_unknown", operation: "", expectedLength: -1)
        }
        // Then malformed parameters, then the call's own errors.
        await expectCode(.invalidParameter) {
            try await engine.cancel(instance: instance, contentId: [], operation: "x")
        }
        await expectCode(.operationNotFound) {
            try await engine.cancel(instance: instance, contentId: [1], operation: "x")
        }
        #expect(engine.serviceControls.retryAfterSeconds == 9)
    }

    @Test func defaultRetryAfterIsFiveSeconds() async throws {
        let fixture = try Fixture()
        try await fixture.engine.setService(available: false)
        let error = await expectCode(.serviceUnavailable) { try fixture.engine.createPort(instance: fixture.instance) }
        #expect(error?.retryAfterSeconds == 5)
        #expect(try fixture.engine.instance(fixture.instance).status == .unavailable)
    }

    @Test func aStatusDropInvalidatesOpenHandlesUntilClosed() async throws {
        let fixture = try Fixture()
        let engine = fixture.engine
        let instance = fixture.instance
        let contentId: [UInt8] = [7]
        try await fixture.publish(testBytes(count: 300, seed: 7), contentId: contentId)
        let reader = try fixture.openReader(contentId)
        let stream = try engine.publishStream(
            instance: instance, contentId: [8], principal: "alice", contentLength: 0, version: 1)
        let sink = try engine.beginAppend(instance: instance, contentId: [8], stream: stream, expectedLength: nil)
        try await sink.write([1, 2, 3])

        try await engine.setService(available: false)
        // The pending append ended with 4057 before setService returned.
        try await engine.setService(available: true)
        let append = try engine.operation(instance: instance, contentId: [8], operation: sink.operation.id)
        #expect(append.state == .failed && append.result == .invalidated)
        await expectCode(.invalidated) { try await sink.write([4]) }

        // Back available: the old handles still answer 4057 ...
        await expectCode(.invalidated) {
            try engine.retrieveContentInformation(instance: instance, contentId: contentId, contentInfo: reader, maxBytes: 10)
        }
        await expectCode(.invalidated) { try engine.completeStream(instance: instance, contentId: [8], stream: stream) }
        // ... until closed; new handles work.
        try await engine.closeContentInformation(instance: instance, contentId: contentId, contentInfo: reader)
        try await engine.closeStream(instance: instance, contentId: [8], stream: stream)
        await expectCode(.invalidHandle) { try engine.completeStream(instance: instance, contentId: [8], stream: stream) }
        let fresh = try fixture.openReader(contentId)
        let read = try engine.retrieveContentInformation(
            instance: instance, contentId: contentId, contentInfo: fresh, maxBytes: 10)
        #expect(read.state == .completed)
    }

    @Test func policyDisableAlsoInvalidates() async throws {
        let fixture = try Fixture()
        let contentId: [UInt8] = [7]
        try await fixture.publish(testBytes(count: 300, seed: 7), contentId: contentId)
        let reader = try fixture.openReader(contentId)
        await fixture.engine.setPolicy(enabled: false)
        await fixture.engine.setPolicy(enabled: true)
        await expectCode(.invalidated) {
            try fixture.engine.retrieveContentInformation(
                instance: fixture.instance, contentId: contentId, contentInfo: reader, maxBytes: 10)
        }
    }

    @Test func statusChangeLongPoll() async throws {
        let fixture = try Fixture()
        let engine = fixture.engine
        let instance = fixture.instance
        // Differs already: answers at once.
        let immediate = try await engine.waitStatusChange(instance: instance, since: .disabled, timeout: .seconds(30))
        #expect(immediate == StatusChange(status: .available, changed: true))
        // Timeout: current status, not changed.
        let timing = Task { try await engine.waitStatusChange(instance: instance, since: .available, timeout: .seconds(3)) }
        await waitUntil { engine.statusWaiterCount(instance: instance) == 1 }
        fixture.clock.advance(by: .seconds(3))
        #expect(try await timing.value == StatusChange(status: .available, changed: false))
        // A change wakes the waiter once.
        let waiting = Task { try await engine.waitStatusChange(instance: instance, since: .available, timeout: .seconds(30)) }
        await waitUntil { engine.statusWaiterCount(instance: instance) == 1 }
        try await engine.setService(available: false)
        #expect(try await waiting.value == StatusChange(status: .unavailable, changed: true))
        #expect(engine.statusWaiterCount(instance: instance) == 0)
        // Works whatever the status.
        await engine.setPolicy(enabled: false)
        let disabled = try await engine.waitStatusChange(instance: instance, since: .unavailable, timeout: .zero)
        #expect(disabled == StatusChange(status: .disabled, changed: true))
        await expectCode(.invalidHandle) {
            try await engine.waitStatusChange(instance: "inst_x", since: .available, timeout: .zero)
        }
    }
}
