/// Counts for monitoring (metrics scrapes): kept by the engine as they change (`EngineTotals`),
/// so that a scrape reads them in constant time and walks no instance or operation.
public struct EngineStatistics: Sendable, Hashable {
    /// Live instances.
    public var instances = 0
    /// Parked long-polls: port dequeues, operation waits and status waits.
    public var parkedWaiters = 0
    /// Pending operations by kind.
    public var pendingByKind: [OperationKind: Int] = [:]
    /// Completions queued in ports, not yet dequeued.
    public var queuedCompletions = 0
    /// Instances shut down so far because their lease ran out.
    public var expiredInstances: UInt64 = 0
    /// Ended operations forgotten before their retention ran out, to make room for new ones.
    public var operationsReleasedEarly: UInt64 = 0
    /// Memory held by all principals (`EngineLimits.maxMemoryPerPrincipal` bounds each one's).
    public var memory = MemoryUsage()
    /// Memory held by each principal that holds any; filled only when asked for (`byPrincipal`).
    public var memoryByPrincipal: [String: MemoryUsage] = [:]
}

extension PeerDistEngine {
    /// A snapshot of the engine's counts; with `byPrincipal`, each principal's memory too.
    public func statistics(byPrincipal: Bool = false) -> EngineStatistics {
        state.withLock { s in
            var stats = EngineStatistics()
            stats.instances = s.instances.count
            stats.expiredInstances = s.expiredInstances
            stats.operationsReleasedEarly = s.operationsReleasedEarly
            stats.parkedWaiters = s.totals.parkedWaiters
            stats.queuedCompletions = s.totals.queuedCompletions
            stats.pendingByKind = s.totals.pendingByKind.filter { $0.value != 0 }
            stats.memory = s.totals.memory
            if byPrincipal { stats.memoryByPrincipal = s.totals.memoryByPrincipal }
            return stats
        }
    }
}
