/// Completion ports as long-poll queues (CreateIoCompletionPort, GetQueuedCompletionStatusEx).
extension PeerDistEngine {
    // MARK: - API

    /// Largest `max` of one dequeue.
    public static let maxDequeueBatch = 1_024

    /// Creates a completion port under an instance.
    /// - Parameter instance: The instance handle.
    /// - Returns: The port handle (`port_…`).
    /// - Throws: 1260, 4065, 6 (instance); 1816 past `maxPortsPerInstance`.
    public func createPort(instance: String) throws(EngineError) -> String {
        try locked { state throws(EngineError) in
            let record = try state.instanceForCall(instance)
            try checkQuota(.handle, of: record.principal, in: state)
            guard record.ports.count < limits.maxPortsPerInstance else {
                throw .quota(
                    "the instance has \(limits.maxPortsPerInstance) ports", retryAfterSeconds: limits.quotaRetryAfterSeconds)
            }
            let handle = HandleKind.port.make()
            record.ports[handle] = PortRecord(name: handle, totals: state.totals)
            return handle
        }
    }

    /// Closes a port: callers parked on it get 735 `ERROR_ABANDONED_WAIT_0`; its undequeued completions
    /// are dropped (the operations' results stay readable at their resources); later dequeues on it get 6.
    /// Handles bound to it keep working, and their completions are dropped.
    /// - Parameters:
    ///   - instance: The instance handle.
    ///   - port: The port handle (`default` cannot be closed: 87).
    /// - Throws: 1260, 4065, 6 (instance, port), 87 for `default`.
    public func closePort(instance: String, port: String) throws(EngineError) {
        let effects = try locked { state throws(EngineError) -> Effects in
            let record = try state.instanceForCall(instance)
            let portRecord = try record.port(named: port)
            guard port != InstanceRecord.defaultPortName else {
                throw .invalidParameter("the default port cannot be closed")
            }
            var effects = Effects()
            abandonWaiters(of: portRecord, effects: &effects)
            portRecord.queue = []
            record.ports.removeValue(forKey: port)
            return effects
        }
        effects.run()
    }

    /// Long-poll dequeue: up to `max` completions, oldest first, each handed to exactly one caller.
    ///
    /// Returns at once when completions are queued; otherwise parks (first come, first served, no
    /// thread held) until some arrive, the timeout passes (an empty reservation with `timedOut`), the
    /// port closes (735) or the calling task is cancelled (the waiter is removed at once and takes no
    /// completion; the call throws 995). **The caller must `commit()` or `requeue()` the result.**
    /// - Parameters:
    ///   - instance: The instance handle.
    ///   - port: `default` or a `port_…` handle.
    ///   - max: 1 to 1,024.
    ///   - timeout: How long to wait; 0 = do not wait; capped at `limits.maxWait`.
    /// - Returns: The reservation.
    /// - Throws: 1260, 4065, 6 (instance, port), 87 (`max`, negative timeout), 1816 past
    ///   `maxWaitersPerPort` (with `retryAfterSeconds`), 735 when the port closes while waiting,
    ///   995 when the task is cancelled.
    public func dequeue(instance: String, port: String, max: Int, timeout: Duration) async throws(EngineError)
        -> Reservation
    {
        let waiterID = state.withLock { $0.nextSerial() }
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<Reservation, EngineError>, Never>) in
                registerDequeue(
                    instance: instance, port: port, max: max, timeout: timeout, waiterID: waiterID
                ) { continuation.resume(returning: $0) }
            }
        } onCancel: {
            removePortWaiter(instance: instance, port: port, waiterID: waiterID, with: .failure(.waitCancelled))
        }
        let reservation = try result.get()
        if Task.isCancelled, !reservation.completions.isEmpty {
            reservation.requeue()
            throw .waitCancelled
        }
        return reservation
    }

    /// The same long-poll dequeue without a task: `completion` gets the result exactly once, from
    /// any thread (during this call when it needs no waiting). A parked caller costs the engine
    /// one waiter entry and one timer, nothing more.
    ///
    /// Calling the returned closure calls the wait off: a caller still parked leaves at once, taking
    /// no completion, and gets 995; one already served is unaffected. **The caller must `commit()`
    /// or `requeue()` a successful result.**
    /// - Parameters: as for the async `dequeue`.
    /// - Returns: What calls the wait off (idempotent).
    public func dequeue(
        instance: String, port: String, max: Int, timeout: Duration,
        completion: @escaping @Sendable (Result<Reservation, EngineError>) -> Void
    ) -> @Sendable () -> Void {
        let waiterID = state.withLock { $0.nextSerial() }
        registerDequeue(instance: instance, port: port, max: max, timeout: timeout, waiterID: waiterID, resume: completion)
        return { [self] in
            removePortWaiter(instance: instance, port: port, waiterID: waiterID, with: .failure(.waitCancelled))
        }
    }

    /// Callers parked on a port now (for metrics and for tests that must know a waiter has parked).
    /// - Returns: The count, 0 for an unknown instance or port.
    public func parkedDequeueCount(instance: String, port: String) -> Int {
        state.withLock { $0.instances[instance]?.ports[port]?.waiters.count ?? 0 }
    }

    // MARK: - Internal

    /// Puts unresolved completions back at the front of their port, in order (two-phase dequeue).
    func requeue(_ completions: [Completion], instance: String, port: String) {
        guard !completions.isEmpty else { return }
        let effects = state.withLock { state -> Effects in
            var effects = Effects()
            guard let portRecord = state.instances[instance]?.ports[port] else { return effects }
            portRecord.queue.insert(contentsOf: completions, at: 0)
            dispatch(portRecord, instance: instance, effects: &effects)
            return effects
        }
        effects.run()
    }

    /// Gives 735 to every caller parked on `port`.
    func abandonWaiters(of port: PortRecord, effects: inout Effects) {
        let waiters = port.waiters
        port.waiters = []
        let error = EngineError(.abandonedWait0, "the completion port was closed")
        for waiter in waiters {
            effects.actions.append {
                waiter.timer?.cancel()
                waiter.resume(.failure(error))
            }
        }
    }

    // MARK: - Private

    private func registerDequeue(
        instance: String, port: String, max: Int, timeout: Duration, waiterID: UInt64,
        resume: @escaping @Sendable (Result<Reservation, EngineError>) -> Void
    ) {
        let outcome = state.withLock { state -> Result<Reservation, EngineError>? in
            do throws(EngineError) {
                let record = try state.instanceForCall(instance)
                let portRecord = try record.port(named: port)
                guard (1...Self.maxDequeueBatch).contains(max) else {
                    throw .invalidParameter("max must be 1 to \(Self.maxDequeueBatch)")
                }
                let wait = try cappedWait(timeout)
                // Checked under the lock, so that a cancellation racing this registration either
                // is seen here or finds the waiter parked (the async form's onCancel).
                if Task.isCancelled { return .failure(.waitCancelled) }
                if !portRecord.queue.isEmpty {
                    let count = min(max, portRecord.queue.count)
                    let batch = Array(portRecord.queue.prefix(count))
                    portRecord.queue.removeFirst(count)
                    return .success(
                        Reservation(engine: self, instance: instance, port: port, completions: batch, timedOut: false))
                }
                if wait == .zero {
                    return .success(Reservation(engine: nil, instance: instance, port: port, completions: [], timedOut: true))
                }
                guard portRecord.waiters.count < limits.maxWaitersPerPort else {
                    throw .quota(
                        "\(limits.maxWaitersPerPort) callers already wait on this port",
                        retryAfterSeconds: limits.quotaRetryAfterSeconds)
                }
                try checkQuota(.parkedWaiter, of: record.principal, in: state)
                let timer = clock.schedule(at: clock.now.advanced(by: wait)) { [self] in
                    let empty = Reservation(engine: nil, instance: instance, port: port, completions: [], timedOut: true)
                    removePortWaiter(instance: instance, port: port, waiterID: waiterID, with: .success(empty))
                }
                portRecord.waiters.append(
                    PortRecord.Waiter(id: waiterID, max: max, resume: resume, timer: timer))
                return nil
            } catch {
                return .failure(error)
            }
        }
        if let outcome { resume(outcome) }
    }

    /// Removes a parked dequeue (timeout or task cancellation) and resumes it with `result`; does
    /// nothing when it was already served.
    private func removePortWaiter(
        instance: String, port: String, waiterID: UInt64, with result: Result<Reservation, EngineError>
    ) {
        let waiter = state.withLock { state -> PortRecord.Waiter? in
            guard let portRecord = state.instances[instance]?.ports[port],
                let index = portRecord.waiters.firstIndex(where: { $0.id == waiterID })
            else { return nil }
            return portRecord.waiters.remove(at: index)
        }
        guard let waiter else { return }
        waiter.timer?.cancel()
        waiter.resume(result)
    }
}
