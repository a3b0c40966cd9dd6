/// Read-only views for tests (`@testable import`) and metrics.
extension PeerDistEngine {
    /// The engine clock's current instant (`GET /admin/clock`).
    public var clockNow: EngineInstant { clock.now }

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

/// Everything the engine holds, counted (for the tests that check nothing is left behind).
struct ResidentCounts: Equatable, CustomStringConvertible {
    var instances = 0
    var ports = 0
    var streams = 0
    var contentInfos = 0
    var operations = 0
    var idIndex = 0
    var retentionQueue = 0
    var retentionTimers = 0
    var queuedCompletions = 0
    var portWaiters = 0
    var operationWaiters = 0
    var statusWaiters = 0
    var publications = 0
    /// Jobs, live sinks and terminal records in the pipelines of the open streams.
    var pipelineEntries = 0

    var description: String {
        "instances \(instances) ports \(ports) streams \(streams) contentInfos \(contentInfos) operations \(operations) "
            + "idIndex \(idIndex) retentionQueue \(retentionQueue) retentionTimers \(retentionTimers) "
            + "queuedCompletions \(queuedCompletions) portWaiters \(portWaiters) operationWaiters \(operationWaiters) "
            + "statusWaiters \(statusWaiters) publications \(publications) pipelineEntries \(pipelineEntries)"
    }
}

extension PeerDistEngine {
    /// Counts every record, index and queue entry the engine holds.
    func residentCounts() -> ResidentCounts {
        let (counts, pipelines) = state.withLock { s -> (ResidentCounts, [StreamPipeline]) in
            var c = ResidentCounts()
            var pipelines: [StreamPipeline] = []
            c.instances = s.instances.count
            c.publications = s.publications.count
            for instance in s.instances.values {
                c.ports += instance.ports.count
                c.streams += instance.streams.count
                c.contentInfos += instance.contentInfos.count
                c.operations += instance.operations.count
                c.idIndex += instance.index.count
                c.retentionQueue += instance.retentionQueue.count
                c.retentionTimers += instance.retentionTimer == nil ? 0 : 1
                c.statusWaiters += instance.statusWaiters.count
                for port in instance.ports.values {
                    c.queuedCompletions += port.queue.count
                    c.portWaiters += port.waiters.count
                }
                for op in instance.operations.values { c.operationWaiters += op.waiters.count }
                pipelines += instance.streams.values.map(\.pipeline)
            }
            return (c, pipelines)
        }
        var result = counts
        for pipeline in pipelines {
            result.pipelineEntries += pipeline.state.withLock { $0.jobs.count + $0.liveSinks.count + $0.terminal.count }
        }
        return result
    }

    /// The pipeline of an open stream (tests hold it weakly to see it freed once the stream closes).
    func pipelineObject(instance: String, stream: String) -> AnyObject? {
        state.withLock { $0.instances[instance]?.streams[stream]?.pipeline }
    }
}
