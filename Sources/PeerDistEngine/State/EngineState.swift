import BlockCache

/// Everything the engine knows, behind its one lock.
struct EngineState {
    var controls: ServiceControls
    var faults = FaultSettings()
    var instances: [String: InstanceRecord] = [:]
    var publications: [PublicationKey: Publication] = [:]
    /// Each principal's instances (for its quotas, and its listing).
    var instancesByPrincipal: [String: Set<String>] = [:]
    /// Reads waiting for a cache entry (any instance's), by the entry's key, then by operation serial.
    var readWaiters: [BlockKey: [UInt64: WakeSignal]] = [:]
    /// Moves whenever an AddData has stored entries: a read that missed before it moved looks again
    /// instead of waiting (no lost wake-up between its miss and its registration).
    var cacheEpoch: UInt64 = 0
    /// Encoded content information read by open content-information handles, one per key.
    var sharedContentInfo: [SharedContentInfoKey: SharedContentInfo] = [:]
    /// Content-information encodings running, by principal (`maxEncodingsPerPrincipal`).
    var encodingsByPrincipal: [String: Int] = [:]
    /// Called with the principal, outside the lock, as each encoding starts (tests hold encodings
    /// with it to see the bound and where the work runs).
    var encodingHook: (@Sendable (String) -> Void)?
    /// Counts kept as they change, for metrics and budgets.
    let totals = EngineTotals()
    /// Instances shut down because their lease ran out.
    var expiredInstances: UInt64 = 0
    /// Ended operations forgotten before their retention ran out, to make room for new ones.
    var operationsReleasedEarly: UInt64 = 0
    /// The engine's clock: every call that names an instance renews its lease with `now`.
    let clock: any EngineClock
    private var lastSerial: UInt64 = 0

    init(retryAfterSeconds: Int, clock: any EngineClock) {
        controls = ServiceControls(policyEnabled: true, available: true, retryAfterSeconds: retryAfterSeconds)
        self.clock = clock
    }

    /// Adds an instance and indexes it under its principal.
    mutating func insert(_ record: InstanceRecord) {
        instances[record.handle] = record
        instancesByPrincipal[record.principal, default: []].insert(record.handle)
    }

    /// Removes an instance and its index entry; the content information its handles read is
    /// released.
    mutating func remove(_ record: InstanceRecord) {
        for reader in record.contentInfos.values { releaseContentInfo(reader.blobKey) }
        record.contentInfos = [:]
        record.releaseCounts()
        instances.removeValue(forKey: record.handle)
        instancesByPrincipal[record.principal]?.remove(record.handle)
        if instancesByPrincipal[record.principal]?.isEmpty == true {
            instancesByPrincipal.removeValue(forKey: record.principal)
        }
    }

    /// The encoded content information under `key` for one more handle: the one already shared, or
    /// `encoded` (nil: none is shared yet).
    mutating func shareContentInfo(_ key: SharedContentInfoKey, encoded: [UInt8]?) -> [UInt8]? {
        if let shared = sharedContentInfo[key] {
            sharedContentInfo[key]?.handles += 1
            return shared.bytes
        }
        guard let encoded else { return nil }
        sharedContentInfo[key] = SharedContentInfo(bytes: encoded, handles: 1)
        totals.record(MemoryUsage(contentInformation: encoded.count), of: key.principal)
        return encoded
    }

    /// One handle fewer reads the content information under `key`; the last one frees it.
    mutating func releaseContentInfo(_ key: SharedContentInfoKey) {
        guard let shared = sharedContentInfo[key] else { return }
        guard shared.handles <= 1 else {
            sharedContentInfo[key]?.handles -= 1
            return
        }
        sharedContentInfo.removeValue(forKey: key)
        totals.record(MemoryUsage(contentInformation: -shared.bytes.count), of: key.principal)
    }

    /// A new engine-wide serial (operations, waiters, publications).
    mutating func nextSerial() -> UInt64 {
        lastSerial += 1
        return lastSerial
    }
}

/// What to do once the engine lock is released: resume continuations, settle work, cancel timers
/// (`actions`) and, for the async callers that aborted operations, wait for their work to stop (`stops`).
struct Effects: Sendable {
    var actions: [@Sendable () -> Void] = []
    var stops: [@Sendable () async -> Void] = []

    /// Runs the actions.
    func run() {
        for action in actions { action() }
    }

    /// Runs the actions, then waits for every stop.
    func runAndWait() async {
        run()
        for stop in stops { await stop() }
    }
}
