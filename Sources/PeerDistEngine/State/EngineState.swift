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

    /// Removes an instance and its index entry.
    mutating func remove(_ record: InstanceRecord) {
        instances.removeValue(forKey: record.handle)
        instancesByPrincipal[record.principal]?.remove(record.handle)
        if instancesByPrincipal[record.principal]?.isEmpty == true {
            instancesByPrincipal.removeValue(forKey: record.principal)
        }
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
