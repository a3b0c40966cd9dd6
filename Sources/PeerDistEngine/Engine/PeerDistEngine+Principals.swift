import Foundation

/// What one principal holds now, against its quotas (EngineLimits, `…PerPrincipal`).
public struct PrincipalUsage: Sendable, Hashable {
    /// Instances open.
    public var instances = 0
    /// Pending operations.
    public var pendingOperations = 0
    /// Parked long-polls.
    public var parkedWaiters = 0
    /// Open ports (`default` excepted), streams, content-information handles and retrievals.
    public var openHandles = 0
    /// Upload bytes reserved by pending appends: each may hold its body length, at most an append
    /// window, waiting to be hashed.
    public var uploadBytesInFlight: Int {
        get { memory.uploads }
        set { memory.uploads = newValue }
    }
    /// Bytes held in memory, against `EngineLimits.maxMemoryPerPrincipal`.
    public var memory = MemoryUsage()

    /// Creates usage counts (zero unless given).
    public init(instances: Int = 0, pendingOperations: Int = 0, parkedWaiters: Int = 0, openHandles: Int = 0,
                uploadBytesInFlight: Int = 0, memory: MemoryUsage = MemoryUsage()) {
        self.instances = instances
        self.pendingOperations = pendingOperations
        self.parkedWaiters = parkedWaiters
        self.openHandles = openHandles
        self.memory = memory
        if uploadBytesInFlight != 0 { self.memory.uploads = uploadBytesInFlight }
    }
}

/// Bytes held in memory for a principal (or, summed, for all), by what holds them: what
/// `EngineLimits.maxMemoryPerPrincipal` bounds.
public struct MemoryUsage: Sendable, Hashable {
    /// Encoded content information of open content-information handles: one copy per
    /// publication, version and range, shared by every handle on it.
    public var contentInformation = 0
    /// Retrievals' content information: the portions collected, then the layout kept once complete.
    public var retrievalContentInformation = 0
    /// AddData bytes retrievals keep until their content information is complete.
    public var retrievalData = 0
    /// Buffers of ended reads kept for their callers, and what pending reads reserve for theirs.
    public var readBuffers = 0
    /// Upload bytes reserved by pending appends and AddData.
    public var uploads = 0

    /// Creates counts (zero unless given).
    public init(contentInformation: Int = 0, retrievalContentInformation: Int = 0, retrievalData: Int = 0,
                readBuffers: Int = 0, uploads: Int = 0) {
        self.contentInformation = contentInformation
        self.retrievalContentInformation = retrievalContentInformation
        self.retrievalData = retrievalData
        self.readBuffers = readBuffers
        self.uploads = uploads
    }

    /// All of it.
    public var total: Int { contentInformation + retrievalContentInformation + retrievalData + readBuffers + uploads }

    /// Each count subtracted.
    static func - (a: MemoryUsage, b: MemoryUsage) -> MemoryUsage {
        MemoryUsage(
            contentInformation: a.contentInformation - b.contentInformation,
            retrievalContentInformation: a.retrievalContentInformation - b.retrievalContentInformation,
            retrievalData: a.retrievalData - b.retrievalData, readBuffers: a.readBuffers - b.readBuffers,
            uploads: a.uploads - b.uploads)
    }

    /// Each count added.
    static func + (a: MemoryUsage, b: MemoryUsage) -> MemoryUsage {
        MemoryUsage(
            contentInformation: a.contentInformation + b.contentInformation,
            retrievalContentInformation: a.retrievalContentInformation + b.retrievalContentInformation,
            retrievalData: a.retrievalData + b.retrievalData, readBuffers: a.readBuffers + b.readBuffers,
            uploads: a.uploads + b.uploads)
    }
}

/// Per-principal quotas and instance leases. A principal's usage is summed over its own instances
/// only, so one principal at its quota costs another nothing but the engine lock.
extension PeerDistEngine {
    // MARK: - API

    /// What `principal` holds now.
    public func usage(of principal: String) -> PrincipalUsage {
        state.withLock { $0.usage(of: principal) }
    }

    // MARK: - Quotas

    /// The quotas a call is checked against.
    enum Quota {
        case instance, pendingOperation, parkedWaiter, handle
        /// An append or AddData reserving this many upload bytes (they count in the memory budget too).
        case upload(Int)
        /// This many more bytes held in memory (`maxMemoryPerPrincipal`).
        case memory(Int)
    }

    /// The upload bytes an operation reserves while pending: its declared length, at most all it
    /// can hold (when its length is unknown, all of that). An append holds one append window
    /// waiting to be hashed; an AddData the window it gathers and those it stores
    /// (`AddDataFeed.heldBytes`). Other kinds upload nothing.
    func uploadReservation(kind: OperationKind, expectedLength: UInt64?) -> Int {
        let held: Int
        switch kind {
        case .publishAddToStream: held = limits.appendWindowBytes
        case .clientAddData: held = AddDataFeed.heldBytes(limits)
        default: return 0
        }
        guard let expectedLength else { return held }
        return expectedLength < UInt64(held) ? Int(expectedLength) : held
    }

    /// 1816 (HTTP 429 with `Retry-After`) when one more `quota` would take `principal` past its bound.
    func checkQuota(_ quota: Quota, of principal: String, in state: EngineState) throws(EngineError) {
        // Only the count this quota needs is summed: the calls that start operations or park
        // waiters pay for one field, not for the whole usage (ports' waiters included).
        let (used, bound, what): (Int, Int, String)
        switch quota {
        case .instance:
            (used, bound, what) = (state.total(of: principal) { _ in 1 }, limits.maxInstancesPerPrincipal, "instances open")
        case .pendingOperation:
            (used, bound, what) = (
                state.total(of: principal, \.pendingOperations), limits.maxPendingOperationsPerPrincipal, "operations pending"
            )
        case .upload(let bytes):
            let bound = limits.maxUploadBytesInFlightPerPrincipal
            let inFlight = state.total(of: principal, \.uploadBytesInFlight)
            guard inFlight <= bound - min(bytes, bound) else {
                throw .quota(
                    "the caller has \(inFlight) upload bytes in flight; \(bytes) more would pass its quota of \(bound)",
                    retryAfterSeconds: limits.quotaRetryAfterSeconds)
            }
            try checkQuota(.memory(bytes), of: principal, in: state)
            return
        case .memory(let bytes):
            let bound = limits.maxMemoryPerPrincipal
            let held = state.memory(of: principal).total
            guard held <= bound - min(bytes, bound) else {
                throw .quota(
                    "the caller holds \(held) bytes in memory (content information, retrievals, read buffers, uploads); "
                        + "\(bytes) more would pass its budget of \(bound)",
                    retryAfterSeconds: limits.quotaRetryAfterSeconds)
            }
            return
        case .parkedWaiter:
            (used, bound, what) = (state.total(of: principal, \.parkedWaiters), limits.maxParkedWaitersPerPrincipal, "long-polls parked")
        case .handle:
            (used, bound, what) = (state.total(of: principal, \.openHandles), limits.maxOpenHandlesPerPrincipal, "handles open")
        }
        guard used < bound else {
            throw .quota("the caller has \(used) \(what), its quota", retryAfterSeconds: limits.quotaRetryAfterSeconds)
        }
    }

    // MARK: - Leases

    /// Arms the lease check of a new instance (nothing when leases are off).
    func armLease(_ record: InstanceRecord) {
        guard limits.instanceIdleTimeout > .zero else { return }
        scheduleLeaseCheck(record, at: record.lastActivity.advanced(by: limits.instanceIdleTimeout))
    }

    private func scheduleLeaseCheck(_ record: InstanceRecord, at deadline: EngineInstant) {
        let handle = record.handle
        record.leaseTimer = clock.schedule(at: deadline) { [weak self] in
            self?.checkLease(instance: handle)
        }
    }

    /// The lease check: an instance with a parked long-poll is in use (its lease is renewed); one
    /// named by a call since the check was armed gets a new check; one idle for the whole timeout is
    /// shut down as `shutdown` does it.
    private func checkLease(instance handle: String) {
        let effects = state.withLock { state -> Effects? in
            guard let record = state.instances[handle] else { return nil }
            record.leaseTimer = nil
            let now = clock.now
            if record.parkedWaiters > 0 { record.lastActivity = now }
            let expiry = record.lastActivity.advanced(by: limits.instanceIdleTimeout)
            guard expiry <= now else {
                scheduleLeaseCheck(record, at: expiry)
                return nil
            }
            state.expiredInstances += 1
            var effects = Effects()
            shutdownLocked(record, state: &state, detail: "the instance's lease expired", effects: &effects)
            return effects
        }
        guard let effects else { return }
        Task { await effects.runAndWait() }
    }
}

extension EngineState {
    /// A principal's usage, summed over its instances.
    func usage(of principal: String) -> PrincipalUsage {
        PrincipalUsage(
            instances: total(of: principal) { _ in 1 }, pendingOperations: total(of: principal, \.pendingOperations),
            parkedWaiters: total(of: principal, \.parkedWaiters), openHandles: total(of: principal, \.openHandles),
            memory: memory(of: principal))
    }

    /// What a principal holds in memory (kept as it changes: `EngineTotals`).
    func memory(of principal: String) -> MemoryUsage {
        totals.memoryByPrincipal[principal] ?? MemoryUsage()
    }

    /// One count summed over a principal's instances.
    func total(of principal: String, _ count: (InstanceRecord) -> Int) -> Int {
        (instancesByPrincipal[principal] ?? []).reduce(0) { sum, handle in sum + (instances[handle].map(count) ?? 0) }
    }
}
