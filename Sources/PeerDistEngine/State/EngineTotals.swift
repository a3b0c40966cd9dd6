/// Engine-wide counts kept as they change (by the records' property observers and the operation
/// transition), so that a metrics scrape or a budget check reads them at once instead of walking
/// instances and operations under the engine lock. Confined to the engine lock.
final class EngineTotals {
    /// Pending operations by kind.
    var pendingByKind: [OperationKind: Int] = [:]
    /// Parked long-polls: port dequeues, operation waits, status waits.
    var parkedWaiters = 0
    /// Completions queued on ports, not handed out.
    var queuedCompletions = 0
    /// Memory held, all principals.
    private(set) var memory = MemoryUsage()
    /// Memory held by each principal that holds any.
    private(set) var memoryByPrincipal: [String: MemoryUsage] = [:]

    /// Moves `principal`'s memory (and the total) by `delta`.
    func record(_ delta: MemoryUsage, of principal: String) {
        guard delta != MemoryUsage() else { return }
        memory = memory + delta
        let now = (memoryByPrincipal[principal] ?? MemoryUsage()) + delta
        memoryByPrincipal[principal] = now == MemoryUsage() ? nil : now
    }
}
