/// Instances (PeerDistStartup, PeerDistGetStatusEx, PeerDistShutdown). These work whatever the
/// service status, as on Windows.
extension PeerDistEngine {
    // MARK: - Constants

    /// The highest API version supported: 2.0 (`PEERDIST_VERSION`, major in the low byte).
    public static let supportedAPIVersion = 2
    /// Content information versions supported (`dwMinVer`, `dwMaxVer`).
    public static let contentInfoVersions = 1...2

    // MARK: - API

    /// Starts an instance (PeerDistStartup). The instance gets a port named `default`.
    /// - Parameters:
    ///   - version: The minimum API version the caller needs, PeerDist encoding: major in the low
    ///     byte, minor in the next (1 = 1.0, 2 = 2.0). 1.x and 2.0 are supported.
    ///   - principal: Who starts it (the caller's token; one principal when none are configured).
    /// - Returns: The new instance.
    /// - Throws: 4062 for an unsupported version; 1816 past `maxInstances` or the principal's
    ///   `maxInstancesPerPrincipal`.
    public func startup(version: Int, principal: String) throws(EngineError) -> InstanceInfo {
        guard Self.isSupportedAPIVersion(version) else {
            throw EngineError(
                .versionUnsupported,
                "API version \(version) is not supported (1.x and 2.0 are; major in the low byte)")
        }
        return try locked { state throws(EngineError) in
            guard state.instances.count < limits.maxInstances else {
                throw .quota("\(limits.maxInstances) instances are open", retryAfterSeconds: limits.quotaRetryAfterSeconds)
            }
            try checkQuota(.instance, of: principal, in: state)
            let record = InstanceRecord(
                handle: HandleKind.instance.make(), principal: principal, createdAt: wallClock.currentDate, now: clock.now,
                totals: state.totals)
            state.insert(record)
            armLease(record)
            return info(of: record, status: state.controls.status)
        }
    }

    /// Describes an instance (PeerDistGetStatusEx), whatever the status.
    /// - Parameter handle: The instance handle.
    /// - Returns: Its description with the current status.
    /// - Throws: 6 for an unknown instance.
    public func instance(_ handle: String) throws(EngineError) -> InstanceInfo {
        try locked { state throws(EngineError) in
            info(of: try state.instanceIgnoringStatus(handle), status: state.controls.status)
        }
    }

    /// The service status as an instance sees it (PeerDistGetStatus), whatever the status.
    /// - Parameter instance: The instance handle.
    /// - Returns: The status.
    /// - Throws: 6 for an unknown instance.
    public func status(instance: String) throws(EngineError) -> ServiceStatus {
        try locked { state throws(EngineError) in
            _ = try state.instanceIgnoringStatus(instance)
            return state.controls.status
        }
    }

    /// Shuts an instance down (PeerDistShutdown), whatever the status.
    ///
    /// Before it returns: every pending operation of the instance has ended with 995 (its completion
    /// posted and handed to parked dequeues, its waiters woken) and its work has stopped; callers still
    /// parked on its ports get 735; status waiters get 995; the publications made through it are
    /// removed; every handle under it is invalid (6).
    /// - Parameter instance: The instance handle.
    /// - Throws: 6 for an unknown instance.
    public func shutdown(instance: String) async throws(EngineError) {
        let effects = try locked { state throws(EngineError) -> Effects in
            let record = try state.instanceIgnoringStatus(instance)
            var effects = Effects()
            shutdownLocked(record, state: &state, detail: "the instance was shut down", effects: &effects)
            return effects
        }
        await effects.runAndWait()
    }

    /// Shuts down every instance of these principals as `shutdown(instance:)` does (their tokens
    /// were revoked): pending operations end with 995, waiters are woken, publications go.
    /// - Returns: How many instances were shut down.
    public func shutdownInstances(of principals: Set<String>, detail: String) async -> Int {
        guard !principals.isEmpty else { return 0 }
        let (effects, count) = state.withLock { state -> (Effects, Int) in
            var effects = Effects()
            let records = principals.flatMap { state.instancesByPrincipal[$0] ?? [] }.compactMap { state.instances[$0] }
            for record in records { shutdownLocked(record, state: &state, detail: detail, effects: &effects) }
            return (effects, records.count)
        }
        await effects.runAndWait()
        return count
    }

    /// Under the lock: shuts `record` down (PeerDistShutdown, or its lease running out); the effects
    /// wake its waiters and stop its work.
    func shutdownLocked(_ record: InstanceRecord, state: inout EngineState, detail: String, effects: inout Effects) {
        abortPending(in: record, result: .operationAborted, detail: detail, effects: &effects) { _ in true }
        for port in record.ports.values {
            abandonWaiters(of: port, effects: &effects)
            port.queue.removeAll()
        }
        let error = EngineError(.operationAborted, detail)
        for waiter in record.statusWaiters.values {
            effects.actions.append {
                waiter.timer?.cancel()
                waiter.continuation.resume(returning: .failure(error))
            }
        }
        record.statusWaiters = [:]
        for timer in [record.retentionTimer, record.leaseTimer].compactMap({ $0 }) {
            effects.actions.append { timer.cancel() }
        }
        record.retentionTimer = nil
        record.leaseTimer = nil
        let handle = record.handle
        state.publications = state.publications.filter { $0.value.ownerInstance != handle }
        state.remove(record)
    }

    /// Instances open now.
    public var instanceCount: Int { state.withLock { $0.instances.count } }

    // MARK: - Private

    private static func isSupportedAPIVersion(_ version: Int) -> Bool {
        guard (0...0xFFFF).contains(version) else { return false }
        let major = version & 0xFF
        let minor = (version >> 8) & 0xFF
        return major == 1 || (major == 2 && minor == 0)
    }

    func info(of record: InstanceRecord, status: ServiceStatus) -> InstanceInfo {
        InstanceInfo(
            handle: record.handle, version: Self.supportedAPIVersion, status: status,
            minVersion: Self.contentInfoVersions.lowerBound, maxVersion: Self.contentInfoVersions.upperBound,
            principal: record.principal, createdAt: record.createdAt,
            lastActivityAt: wallClock.currentDate.addingTimeInterval(-(clock.now - record.lastActivity).inSeconds))
    }
}
