import BlockCache
import Foundation
import PCCRC
import Synchronization

/// The PeerDist domain: instances, completion ports, operations (OVERLAPPED), publishing and content
/// information, with the Windows semantics of PEERDIST.md and the contract of API.md. It knows no HTTP:
/// every call either returns a `Sendable` value or throws `EngineError` carrying the Win32 code the
/// HTTP layer maps to a status.
///
/// Order of checks of every call under an instance except `startup`, `instance`, `status`,
/// `waitStatusChange` and `shutdown`: policy disabled → 1260; service unavailable → 4065 (with
/// `retryAfterSeconds`); unknown or foreign handle → 6 (an invalidated stream or content-information
/// handle → 4057); malformed parameter → 87; then the call's own errors.
///
/// Concurrency: all state sits behind one `Mutex`; nothing blocks while holding it. Waiters (dequeues,
/// operation waits, status waits) park on continuations without a thread. Hashing runs on a bounded
/// pool of serial queues (`EngineLimits.hashingWorkers`), never on the caller's thread.
public final class PeerDistEngine: Sendable {
    // MARK: - Properties

    /// The bounds and defaults in force.
    public let limits: EngineLimits
    let secret: ServerSecret
    /// Seals the listings' page tokens with a key derived from `secret`.
    let pageTokens: PageTokenCodec
    let clock: any EngineClock
    let wallClock: any WallClock
    let hashingPool: HashingPool
    /// The service's one block cache, shared by all instances (retrieval needs it).
    let blockCache: BlockCache?
    let state: Mutex<EngineState>

    // MARK: - Init

    /// Creates an engine with no instances, policy enabled and the service available.
    /// - Parameters:
    ///   - secret: The server secret (one per service; loading and saving it is the caller's job).
    ///   - limits: Bounds and defaults.
    ///   - clock: Monotonic time for timeouts, retention and fault delays (`ManualClock` in tests).
    ///   - wallClock: Dates for `createdAt`, `endedAt` and `publishedAt` (`ManualClock` in tests).
    ///   - blockCache: The block cache retrieval stores into and reads from; `nil`: retrieval
    ///     answers 4065.
    public init(
        secret: ServerSecret,
        limits: EngineLimits = EngineLimits(),
        clock: any EngineClock = SystemEngineClock(),
        wallClock: any WallClock = SystemWallClock(),
        blockCache: BlockCache? = nil
    ) {
        self.blockCache = blockCache
        self.secret = secret
        pageTokens = PageTokenCodec(secret: secret)
        self.limits = limits
        self.clock = clock
        self.wallClock = wallClock
        hashingPool = HashingPool(workerCount: limits.hashingWorkers)
        state = Mutex(EngineState(retryAfterSeconds: limits.defaultServiceRetryAfterSeconds, clock: clock))
    }

    // MARK: - Locking

    /// Runs `body` under the engine lock, keeping its typed error.
    func locked<R: Sendable>(_ body: (inout EngineState) throws(EngineError) -> R) throws(EngineError) -> R {
        try state.withLock { (state: inout EngineState) throws(EngineError) -> R in try body(&state) }
    }

    /// Caps a long-poll timeout at `maxWait`; a negative one is 87.
    func cappedWait(_ timeout: Duration) throws(EngineError) -> Duration {
        guard timeout >= .zero else { throw .invalidParameter("timeout must not be negative") }
        return min(timeout, limits.maxWait)
    }

    // MARK: - Operations: creation

    /// Creates a pending operation under `instance` (caller-chosen id or `op_…`); a read reserves
    /// `readBytes` of its principal's memory for its buffer while it is pending.
    /// - Throws: 4058 when a pending operation has that id; 1816 past the operation or port bounds,
    ///   the principal's quotas or its memory budget.
    func makeOperation(
        in instance: InstanceRecord, state: inout EngineState, kind: OperationKind, contentId: [UInt8],
        handle: String, owner: OperationOwner? = nil, portName: String, key: UInt64, requestedId: String?,
        expectedLength: UInt64? = nil, readBytes: Int = 0
    ) throws(EngineError) -> OperationRecord {
        purgeExpired(instance)
        var replaced: OperationRecord?
        let id: String
        if let requestedId {
            if let existing = instance.operation(id: requestedId) {
                guard !existing.isPending else {
                    throw EngineError(.alreadyExists, "operation '\(requestedId)' is pending in this instance")
                }
                replaced = existing
            }
            id = requestedId
        } else {
            id = HandleKind.operation.make()
        }
        // Only pending operations refuse new work: retained ones make room, the oldest first.
        guard instance.pendingOperations < limits.maxOperationsPerInstance else {
            throw .quota(
                "the instance has \(limits.maxOperationsPerInstance) pending operations; "
                    + "wait for some to end or cancel them",
                retryAfterSeconds: limits.quotaRetryAfterSeconds)
        }
        if let port = instance.ports[portName], port.queue.count >= limits.maxQueuedCompletionsPerPort {
            throw .quota(
                "port '\(portName)' holds \(limits.maxQueuedCompletionsPerPort) undequeued completions",
                retryAfterSeconds: limits.quotaRetryAfterSeconds)
        }
        try checkQuota(.pendingOperation, of: instance.principal, in: state)
        let upload = uploadReservation(kind: kind, expectedLength: expectedLength)
        if upload > 0 { try checkQuota(.upload(upload), of: instance.principal, in: state) }
        if readBytes > 0 { try checkQuota(.memory(readBytes), of: instance.principal, in: state) }
        if let replaced { instance.remove(replaced) }
        state.operationsReleasedEarly += UInt64(releaseOldestEnded(instance, keeping: limits.maxOperationsPerInstance - 1))
        let serial = state.nextSerial()
        let earliestEnd = state.faults.delay(for: kind).map { clock.now.advanced(by: $0) }
        let operation = OperationRecord(
            serial: serial, id: id, kind: kind, contentId: contentId, handle: handle, owner: owner ?? .content(contentId),
            portName: portName, key: key,
            createdAt: wallClock.currentDate, earliestEnd: earliestEnd, expectedLength: expectedLength)
        operation.readReservation = readBytes
        instance.insert(operation)
        instance.pendingOperations += 1
        state.totals.pendingByKind[kind, default: 0] += 1
        instance.uploadBytesInFlight += upload
        instance.readReservations += readBytes
        return operation
    }

    /// Drops ended operations whose retention has run out.
    func purgeExpired(_ instance: InstanceRecord) {
        let now = clock.now
        while let first = instance.retentionQueue.first, first.expiry <= now {
            instance.retentionQueue.removeFirst()
            if let operation = instance.operations[first.serial], !operation.isPending {
                instance.remove(operation)
            }
        }
    }

    /// Forgets the instance's oldest ended operations, before their retention runs out, until it
    /// keeps at most `limit` operations (pending ones are never forgotten).
    /// - Returns: How many were forgotten.
    func releaseOldestEnded(_ instance: InstanceRecord, keeping limit: Int) -> Int {
        var released = 0
        while instance.operations.count > limit, let first = instance.retentionQueue.popFirst() {
            guard let operation = instance.operations[first.serial], !operation.isPending else { continue }
            instance.remove(operation)
            released += 1
        }
        return released
    }

    /// Arms the instance's retention sweep for its oldest ended operation, unless one is armed: ended
    /// operations are forgotten when their retention runs out, whether or not a call comes.
    func scheduleRetentionSweep(_ instance: InstanceRecord) {
        guard instance.retentionTimer == nil, let first = instance.retentionQueue.first else { return }
        let handle = instance.handle
        instance.retentionTimer = clock.schedule(at: first.expiry) { [weak self] in
            self?.sweepRetention(instance: handle)
        }
    }

    /// The retention sweep: forgets the expired operations, then re-arms for the next expiry.
    private func sweepRetention(instance handle: String) {
        state.withLock { state in
            guard let instance = state.instances[handle] else { return }
            instance.retentionTimer = nil
            purgeExpired(instance)
            scheduleRetentionSweep(instance)
        }
    }

    // MARK: - Operations: the transition

    /// The one transition of an operation: pending → completed | failed | canceled.
    ///
    /// Only the caller that wins (the operation was pending) gets `true`; it has then, under the lock,
    /// recorded the result, posted exactly one completion to the bound port (handing it to a parked
    /// dequeue if any) and queued the wake-up of the operation's waiters in `effects`.
    @discardableResult
    func transition(
        _ operation: OperationRecord, in instance: InstanceRecord, to outcome: OperationRecord.Outcome,
        effects: inout Effects
    ) -> Bool {
        guard operation.isPending else { return false }
        let ended = OperationRecord.Ended(
            state: outcome.state, result: outcome.result, bytesTransferred: outcome.bytesTransferred,
            offset: outcome.offset, buffer: outcome.buffer, endedAt: wallClock.currentDate,
            endedInstant: clock.now)
        operation.phase = .ended(ended)
        instance.pendingOperations -= 1
        instance.totals.pendingByKind[operation.kind, default: 0] -= 1
        instance.uploadBytesInFlight -= uploadReservation(kind: operation.kind, expectedLength: operation.expectedLength)
        instance.readReservations -= operation.readReservation
        instance.operationWaiters -= operation.waiters.count
        if let timer = operation.faultTimer {
            operation.faultTimer = nil
            effects.actions.append { timer.cancel() }
        }
        let snapshot = operation.snapshot(includeBuffer: true)
        for waiter in operation.waiters.values {
            effects.actions.append {
                waiter.timer?.cancel()
                waiter.continuation.resume(returning: .success(snapshot))
            }
        }
        operation.waiters = [:]
        updateStream(after: operation, in: instance, outcome: outcome)
        updateRetrieval(after: operation, in: instance, outcome: outcome, effects: &effects)
        if let port = instance.ports[operation.portName] {
            port.queue.append(
                Completion(
                    sequence: port.nextSequence, key: operation.key, operation: operation.id,
                    contentId: operation.contentId, kind: operation.kind, result: outcome.result,
                    bytesTransferred: outcome.bytesTransferred))
            port.nextSequence += 1
            dispatch(port, instance: instance.handle, effects: &effects)
        }
        instance.retainBuffer(
            of: operation, limit: limits.maxRetainedBufferBytesPerInstance, operationLimit: limits.maxOperationsPerInstance)
        instance.retentionQueue.append((serial: operation.serial, expiry: ended.endedInstant.advanced(by: limits.retention)))
        instance.compactRetentionQueue(limit: limits.maxOperationsPerInstance)
        scheduleRetentionSweep(instance)
        return true
    }

    /// Ends `operation` by abort (cancel, close, unpublish, shutdown, invalidation) if it is pending;
    /// its work's `abort` hook goes to `effects.stops`.
    @discardableResult
    func abortLocked(
        _ operation: OperationRecord, in instance: InstanceRecord, result: Win32Error, detail: String,
        effects: inout Effects
    ) -> Bool {
        guard transition(operation, in: instance, to: .aborted(result), effects: &effects) else { return false }
        if let work = operation.work {
            operation.work = nil
            let error = EngineError(result, detail)
            effects.stops.append { await work.abort(error) }
        }
        return true
    }

    /// Aborts every pending operation that `matches`, oldest first.
    func abortPending(
        in instance: InstanceRecord, result: Win32Error, detail: String, effects: inout Effects,
        where matches: (OperationRecord) -> Bool
    ) {
        let pending = instance.operations.values.filter { $0.isPending && matches($0) }.sorted { $0.serial < $1.serial }
        for operation in pending {
            abortLocked(operation, in: instance, result: result, detail: detail, effects: &effects)
        }
    }

    /// Aborts one operation from outside (an `AppendSink` whose body failed) and waits for its work.
    func abortOperation(instance: String, serial: UInt64, result: Win32Error, detail: String) async {
        let effects = state.withLock { state -> Effects in
            var effects = Effects()
            if let record = state.instances[instance], let operation = record.operations[serial] {
                abortLocked(operation, in: record, result: result, detail: detail, effects: &effects)
            }
            return effects
        }
        await effects.runAndWait()
    }

    // MARK: - Operations: natural ends

    /// The operation's own work ended (from a hashing worker or a fault timer).
    func finishNaturally(instance: String, serial: UInt64, _ end: NaturalEnd, honorDelay: Bool = true) {
        let effects = state.withLock { state -> Effects in
            var effects = Effects()
            guard let record = state.instances[instance], let operation = record.operations[serial] else {
                return effects
            }
            finishNaturallyLocked(operation, in: record, end, honorDelay: honorDelay, state: &state, effects: &effects)
            return effects
        }
        effects.run()
    }

    /// Under the lock: ends `operation` with its natural result now, or at its fault-delay deadline.
    func finishNaturallyLocked(
        _ operation: OperationRecord, in instance: InstanceRecord, _ end: NaturalEnd, honorDelay: Bool,
        state: inout EngineState, effects: inout Effects
    ) {
        guard operation.isPending else { return }
        if honorDelay, let earliest = operation.earliestEnd, clock.now < earliest {
            let handle = instance.handle
            let serial = operation.serial
            operation.faultTimer = clock.schedule(at: earliest) { [self] in
                finishNaturally(instance: handle, serial: serial, end, honorDelay: false)
            }
            return
        }
        let outcome = resolve(end, of: operation, in: instance, state: &state)
        let firstEffect = effects.actions.count
        guard transition(operation, in: instance, to: outcome, effects: &effects) else { return }
        if let work = operation.work {
            operation.work = nil
            let accepted = outcome.state == .completed
            // Settled before the waiters are woken: whoever sees the operation ended finds its
            // work released.
            effects.actions.insert({ work.settle(accepted) }, at: firstEffect)
        }
    }

    /// Turns a natural end into the final values, at the moment of the transition.
    private func resolve(
        _ end: NaturalEnd, of operation: OperationRecord, in instance: InstanceRecord, state: inout EngineState
    ) -> OperationRecord.Outcome {
        switch end {
        case .appended(let bytes):
            return .finished(.success, bytes: bytes)
        case .failed(let result):
            return .finished(result)
        case .streamCompleted(let hashes):
            guard let stream = instance.streams[operation.handle] else { return .finished(.invalidHandle) }
            let key = PublicationKey(principal: stream.principal, contentId: operation.contentId)
            guard state.publications[key] == nil else { return .finished(.alreadyExists) }
            state.publications[key] = Publication(
                serial: state.nextSerial(), contentId: operation.contentId, principal: stream.principal,
                ownerInstance: instance.handle, hashes: hashes, publishedAt: wallClock.currentDate)
            instance.publicationCount += 1
            return .finished(.success, bytes: hashes.length)
        case .readContentInfo(let maxBytes):
            guard let reader = instance.contentInfos[operation.handle] else { return .finished(.invalidHandle) }
            let start = reader.position
            guard start < reader.blob.count else { return .finished(.noMore, offset: UInt64(start)) }
            let stop = min(reader.blob.count, start + maxBytes)
            reader.position = stop
            return .finished(
                .success, bytes: UInt64(stop - start), offset: UInt64(start), buffer: Array(reader.blob[start..<stop]))
        case .outcome(let outcome):
            return outcome
        case .retrievalCompleted(let layout, let bytes):
            return completeRetrieval(operation, in: instance, layout: layout, contentInfoBytes: bytes, state: state)
        }
    }

    /// Keeps a stream's byte accounting and completion state in step with its operations.
    private func updateStream(
        after operation: OperationRecord, in instance: InstanceRecord, outcome: OperationRecord.Outcome
    ) {
        guard let stream = instance.streams[operation.handle] else { return }
        switch operation.kind {
        case .publishAddToStream:
            stream.pendingAppends.removeValue(forKey: operation.serial)
            if outcome.state == .completed { stream.committedBytes += outcome.bytesTransferred }
        case .publishCompleteStream:
            if case .completing(let serial) = stream.completion, serial == operation.serial {
                stream.completion = outcome.state == .completed ? .completed : .open
            }
        default:
            break
        }
    }

    // MARK: - Ports: hand-out

    /// Hands queued completions to parked dequeues, first come first served, up to each one's `max`.
    func dispatch(_ port: PortRecord, instance: String, effects: inout Effects) {
        while !port.queue.isEmpty, let waiter = port.waiters.popFirst() {
            let count = min(waiter.max, port.queue.count)
            let batch = Array(port.queue.prefix(count))
            port.queue.removeFirst(count)
            let reservation = Reservation(
                engine: self, instance: instance, port: port.name, completions: batch, timedOut: false)
            effects.actions.append {
                waiter.timer?.cancel()
                waiter.resume(.success(reservation))
            }
        }
    }
}
