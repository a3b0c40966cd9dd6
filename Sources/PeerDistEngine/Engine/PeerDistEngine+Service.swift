/// Service controls (Group Policy, service state, test faults) and the status-change long-poll
/// (PeerDistRegisterForStatusChangeNotification).
extension PeerDistEngine {
    // MARK: - API: controls

    /// Policy, availability and the unavailable `Retry-After`, as `/admin/policy` and `/admin/service`
    /// report them.
    public var serviceControls: ServiceControls { state.withLock { $0.controls } }

    /// The current service status.
    public var serviceStatus: ServiceStatus { state.withLock { $0.controls.status } }

    /// Enables or disables PeerDist by policy. Disabling makes every call answer 1260 and invalidates
    /// every open stream and content-information handle (see `setService`).
    /// - Parameter enabled: The policy.
    public func setPolicy(enabled: Bool) async {
        await applyControls { $0.policyEnabled = enabled }
    }

    /// Makes the service available or unavailable.
    ///
    /// When the status drops from available, every open stream and content-information handle of every
    /// instance is invalidated: its pending operations end failed with 4057 (their work stopped before
    /// this returns) and every later call on it answers 4057 until it is closed, even after the service
    /// is back. Status waiters whose `since` differs from the new status are answered.
    /// - Parameters:
    ///   - available: The new availability.
    ///   - retryAfterSeconds: `Retry-After` of 4065 answers; `nil` keeps the current value.
    /// - Throws: 87 for a negative `retryAfterSeconds`.
    public func setService(available: Bool, retryAfterSeconds: Int? = nil) async throws(EngineError) {
        if let retryAfterSeconds, retryAfterSeconds < 0 {
            throw .invalidParameter("retryAfterSeconds must not be negative")
        }
        await applyControls { controls in
            controls.available = available
            if let retryAfterSeconds { controls.retryAfterSeconds = retryAfterSeconds }
        }
    }

    /// The faults in force (`/admin/faults`).
    public var faults: FaultSettings { state.withLock { $0.faults } }

    /// Sets the faults (`FaultSettings()` clears them). They apply to operations accepted afterwards.
    /// - Parameter faults: The new settings.
    /// - Throws: 87 for a negative delay or one above `limits.maxFaultDelay`.
    public func setFaults(_ faults: FaultSettings) throws(EngineError) {
        guard faults.completionDelay >= .zero, faults.completionDelay <= limits.maxFaultDelay else {
            throw .invalidParameter("completionDelayMs must be 0 to \(limits.maxFaultDelay)")
        }
        state.withLock { $0.faults = faults }
    }

    // MARK: - API: status long-poll

    /// Waits for the status to differ from `since` (one-shot), whatever the status.
    /// - Parameters:
    ///   - instance: The instance handle.
    ///   - since: The status the caller knows.
    ///   - timeout: How long to wait; 0 = do not wait; capped at `limits.maxWait`.
    /// - Returns: The status and whether it differs from `since` (`false` at the timeout).
    /// - Throws: 6 for an unknown instance, 87 for a negative timeout, 1816 past
    ///   `maxStatusWaitersPerInstance`, 995 when the instance shuts down or the task is cancelled.
    public func waitStatusChange(instance: String, since: ServiceStatus, timeout: Duration) async throws(EngineError)
        -> StatusChange
    {
        let waiterID = state.withLock { $0.nextSerial() }
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<StatusChange, EngineError>, Never>) in
                let immediate = state.withLock { state -> Result<StatusChange, EngineError>? in
                    do throws(EngineError) {
                        let record = try state.instanceIgnoringStatus(instance)
                        let wait = try cappedWait(timeout)
                        if Task.isCancelled { throw .waitCancelled }
                        let current = state.controls.status
                        if current != since { return .success(StatusChange(status: current, changed: true)) }
                        if wait == .zero { return .success(StatusChange(status: current, changed: false)) }
                        guard record.statusWaiters.count < limits.maxStatusWaitersPerInstance else {
                            throw .quota(
                                "\(limits.maxStatusWaitersPerInstance) callers already wait for a status change",
                                retryAfterSeconds: limits.quotaRetryAfterSeconds)
                        }
                        try checkQuota(.parkedWaiter, of: record.principal, in: state)
                        let timer = clock.schedule(at: clock.now.advanced(by: wait)) { [self] in
                            removeStatusWaiter(instance: instance, waiterID: waiterID, with: nil)
                        }
                        record.statusWaiters[waiterID] = InstanceRecord.StatusWaiter(
                            since: since, continuation: continuation, timer: timer)
                        return nil
                    } catch {
                        return .failure(error)
                    }
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            removeStatusWaiter(instance: instance, waiterID: waiterID, with: .failure(.waitCancelled))
        }
        return try result.get()
    }

    // MARK: - Private

    private func applyControls(_ change: @Sendable (inout ServiceControls) -> Void) async {
        let effects = state.withLock { state -> Effects in
            var effects = Effects()
            let old = state.controls.status
            change(&state.controls)
            let new = state.controls.status
            guard old != new else { return effects }
            if new != .available { invalidateHandles(&state, effects: &effects) }
            for record in state.instances.values {
                for (id, waiter) in record.statusWaiters where waiter.since != new {
                    record.statusWaiters.removeValue(forKey: id)
                    effects.actions.append {
                        waiter.timer?.cancel()
                        waiter.continuation.resume(returning: .success(StatusChange(status: new, changed: true)))
                    }
                }
            }
            return effects
        }
        await effects.runAndWait()
    }

    /// Invalidates every open stream and content-information handle and ends their pending operations
    /// with 4057.
    private func invalidateHandles(_ state: inout EngineState, effects: inout Effects) {
        var owners: Set<String> = []
        for record in state.instances.values {
            for stream in record.streams.values where !stream.invalidated {
                stream.invalidated = true
                owners.insert(stream.handle)
            }
            for reader in record.contentInfos.values where !reader.invalidated {
                reader.invalidated = true
                owners.insert(reader.handle)
            }
            for retrieval in record.retrievals.values where !retrieval.invalidated {
                retrieval.invalidated = true
                owners.insert(retrieval.handle)
            }
            abortPending(
                in: record, result: .invalidated, detail: "the handle was invalidated by a service status change",
                effects: &effects
            ) { owners.contains($0.handle) }
        }
    }

    private func removeStatusWaiter(instance: String, waiterID: UInt64, with result: Result<StatusChange, EngineError>?) {
        let found = state.withLock { state -> (InstanceRecord.StatusWaiter, ServiceStatus)? in
            guard let waiter = state.instances[instance]?.statusWaiters.removeValue(forKey: waiterID) else {
                return nil
            }
            return (waiter, state.controls.status)
        }
        guard let (waiter, status) = found else { return }
        waiter.timer?.cancel()
        waiter.continuation.resume(returning: result ?? .success(StatusChange(status: status, changed: false)))
    }
}
