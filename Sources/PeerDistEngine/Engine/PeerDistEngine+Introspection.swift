/// Read-only views for tests (`@testable import`) and metrics.
extension PeerDistEngine {
    /// Callers parked on one operation.
    func operationWaiterCount(instance: String, operation: String) -> Int {
        state.withLock { $0.instances[instance]?.operation(id: operation)?.waiters.count ?? 0 }
    }

    /// Status waiters parked on an instance.
    func statusWaiterCount(instance: String) -> Int {
        state.withLock { $0.instances[instance]?.statusWaiters.count ?? 0 }
    }

    /// Completions queued on a port and not handed out.
    func queuedCompletionCount(instance: String, port: String) -> Int {
        state.withLock { $0.instances[instance]?.ports[port]?.queue.count ?? 0 }
    }

    /// The largest number of body bytes a stream has buffered for one append so far.
    func peakBufferedBytes(instance: String, stream: String) -> Int? {
        let pipeline = state.withLock { $0.instances[instance]?.streams[stream]?.pipeline }
        return pipeline?.peakBufferedBytes
    }
}

extension PeerDistEngine {
    /// `true` while an operation's natural end waits for its fault delay.
    func isHeldByFault(instance: String, operation: String) -> Bool {
        state.withLock { $0.instances[instance]?.operation(id: operation)?.faultTimer != nil }
    }
}
