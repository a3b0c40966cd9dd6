/// Everything the engine knows, behind its one lock.
struct EngineState {
    var controls: ServiceControls
    var faults = FaultSettings()
    var instances: [String: InstanceRecord] = [:]
    var publications: [PublicationKey: Publication] = [:]
    private var lastSerial: UInt64 = 0

    init(retryAfterSeconds: Int) {
        controls = ServiceControls(policyEnabled: true, available: true, retryAfterSeconds: retryAfterSeconds)
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
