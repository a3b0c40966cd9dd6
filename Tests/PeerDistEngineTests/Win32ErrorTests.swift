import Testing

@testable import PeerDistEngine

@Suite struct Win32ErrorTests {
    @Test func codesAndNames() {
        #expect(Win32Error.operationNotFound.code == 4059)
        #expect(Win32Error.operationNotFound.name == "PEERDIST_ERROR_OPERATION_NOT_FOUND")
        #expect(Win32Error.notEnoughQuota.code == 1816)
        #expect(Win32Error.abandonedWait0.code == 735)
        #expect(Win32Error.accessDenied.code == 5)
        #expect(Win32Error.notSupported.code == 50)
        #expect(Win32Error.invalidated.code == 4057)
        #expect(Win32Error.notFound.code == 1168)
        #expect(Win32Error.allKnown.count == 31)
        #expect(Set(Win32Error.allKnown.map(\.code)).count == Win32Error.allKnown.count)
        #expect(Win32Error.allKnown.map(\.code) == Win32Error.allKnown.map(\.code).sorted())
        #expect(Win32Error(code: 4065) == .serviceUnavailable)
        #expect(Win32Error(code: 4065).name == "PEERDIST_ERROR_SERVICE_UNAVAILABLE")
        #expect(Win32Error(code: 12345).name == "WIN32_ERROR_12345")
        for code in [0, 6, 87, 995, 996, 997, 1260, 1460] + Array(4050...4066) {
            #expect(Win32Error(code: UInt32(code)).name.hasPrefix("WIN32_ERROR_") == false)
        }
    }
}

@Suite struct InstanceTests {
    @Test func startupVersions() async throws {
        let fixture = try Fixture()
        for version in [1, 2, 0x0101, 0x0501] {
            let info = try fixture.engine.startup(version: version, principal: "p")
            #expect(info.version == 2)
            #expect(info.minVersion == 1 && info.maxVersion == 2)
            #expect(info.status == .available)
        }
        for version in [0, 3, 0x0102, 0x0202, 0x1_0002, -1, 256] {
            await expectCode(.versionUnsupported) { try fixture.engine.startup(version: version, principal: "p") }
        }
    }

    @Test func handlesHavePrefixesAndRandomBits() async throws {
        let fixture = try await ReadFixture()
        let engine = fixture.engine
        let port = try engine.createPort(instance: fixture.instance)
        let stream = try engine.publishStream(
            instance: fixture.instance, contentId: [9], principal: "alice", contentLength: 0, version: 1)
        let op = try fixture.read()
        for (handle, prefix) in [
            (fixture.instance, "inst_"), (port, "port_"), (stream, "strm_"), (fixture.reader, "cinf_"), (op.id, "op_"),
        ] {
            #expect(handle.hasPrefix(prefix))
            let random = handle.dropFirst(prefix.count)
            #expect(random.count == 22, "128 bits in base64url without padding")
            #expect(random.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
        }
        let other = try engine.startup(version: 2, principal: "alice").handle
        #expect(other != fixture.instance)
    }

    @Test func shutdownInvalidatesEverything() async throws {
        let fixture = try await ReadFixture()
        let engine = fixture.engine
        let published = try engine.publication(instance: fixture.instance, contentId: fixture.contentId, principal: "alice")
        #expect(published.length == 1_000)
        try await engine.shutdown(instance: fixture.instance)
        await expectCode(.invalidHandle) { try fixture.read() }
        await expectCode(.invalidHandle) { try engine.instance(fixture.instance) }
        await expectCode(.invalidHandle) { try await engine.shutdown(instance: fixture.instance) }
        await expectCode(.invalidHandle) {
            try await engine.dequeue(instance: fixture.instance, port: "default", max: 1, timeout: .zero)
        }
        // Its publications went with it.
        let other = try engine.startup(version: 2, principal: "alice").handle
        await expectCode(.notFound) {
            try engine.publication(instance: other, contentId: fixture.contentId, principal: "alice")
        }
    }

    @Test func instanceBound() async throws {
        let fixture = try Fixture(limits: EngineLimits(maxInstances: 2))
        _ = try fixture.engine.startup(version: 2, principal: "p")
        let error = await expectCode(.notEnoughQuota) { try fixture.engine.startup(version: 2, principal: "p") }
        #expect(error?.retryAfterSeconds != nil)
    }

    @Test func statusCallsWorkWhateverTheStatus() async throws {
        let fixture = try Fixture()
        let engine = fixture.engine
        await engine.setPolicy(enabled: false)
        #expect(try engine.instance(fixture.instance).status == .disabled)
        #expect(try engine.status(instance: fixture.instance) == .disabled)
        let started = try engine.startup(version: 2, principal: "p")
        #expect(started.status == .disabled)
        try await engine.shutdown(instance: started.handle)
    }
}
