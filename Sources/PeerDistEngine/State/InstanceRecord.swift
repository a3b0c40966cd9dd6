import DequeModule
import Foundation

/// A PeerDist instance (session) and every handle under it. Confined to the engine lock.
final class InstanceRecord {
    struct StatusWaiter {
        let since: ServiceStatus
        let continuation: CheckedContinuation<Result<StatusChange, EngineError>, Never>
        let timer: (any EngineTimer)?
    }

    /// Name of the port every instance has.
    static let defaultPortName = "default"

    let handle: String
    let principal: String
    let createdAt: Date
    /// When a call was last made on the instance (startup counts as one).
    var lastActivityAt: Date
    var ports: [String: PortRecord]
    var streams: [String: StreamRecord] = [:]
    var contentInfos: [String: ContentInfoRecord] = [:]
    /// Operations by serial (creation order), pending and retained.
    var operations: [UInt64: OperationRecord] = [:]
    /// Operation id → serial.
    var idIndex: [String: UInt64] = [:]
    /// Ended operations in end order with their expiry (retention is the same for all).
    var retentionQueue: Deque<(serial: UInt64, expiry: EngineInstant)> = []
    /// The sweep that forgets expired operations even when no call comes (at most one at a time).
    var retentionTimer: (any EngineTimer)?
    var statusWaiters: [UInt64: StatusWaiter] = [:]
    /// Publications made through this instance and still published.
    var publicationCount = 0

    init(handle: String, principal: String, createdAt: Date) {
        self.handle = handle
        self.principal = principal
        self.createdAt = createdAt
        self.lastActivityAt = createdAt
        ports = [Self.defaultPortName: PortRecord(name: Self.defaultPortName)]
    }

    /// The operation with this id, pending or retained.
    func operation(id: String) -> OperationRecord? {
        idIndex[id].flatMap { operations[$0] }
    }

    /// Drops retention entries of operations already forgotten (a name used again), so the queue stays
    /// within a small multiple of the operation bound.
    func compactRetentionQueue(limit: Int) {
        guard retentionQueue.count > 2 * limit + 16 else { return }
        retentionQueue = Deque(retentionQueue.filter { operations[$0.serial] != nil })
    }

    /// Forgets an ended operation.
    func remove(_ operation: OperationRecord) {
        operations.removeValue(forKey: operation.serial)
        if idIndex[operation.id] == operation.serial {
            idIndex.removeValue(forKey: operation.id)
        }
    }
}
