/// Counts for monitoring (metrics scrapes): read under the engine lock, cheap enough per scrape.
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
}

extension PeerDistEngine {
    /// A snapshot of the engine's counts.
    public func statistics() -> EngineStatistics {
        state.withLock { s in
            var stats = EngineStatistics()
            stats.instances = s.instances.count
            stats.expiredInstances = s.expiredInstances
            stats.operationsReleasedEarly = s.operationsReleasedEarly
            for instance in s.instances.values {
                stats.parkedWaiters += instance.statusWaiters.count
                for port in instance.ports.values {
                    stats.parkedWaiters += port.waiters.count
                    stats.queuedCompletions += port.queue.count
                }
                for op in instance.operations.values {
                    stats.parkedWaiters += op.waiters.count
                    if op.state == .pending { stats.pendingByKind[op.kind, default: 0] += 1 }
                }
            }
            return stats
        }
    }
}
