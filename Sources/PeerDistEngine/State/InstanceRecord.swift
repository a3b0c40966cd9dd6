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
    var ports: [String: PortRecord]
    var streams: [String: StreamRecord] = [:]
    var contentInfos: [String: ContentInfoRecord] = [:]
    var retrievals: [String: RetrievalRecord] = [:]
    /// Operations by serial (creation order), pending and retained.
    var operations: [UInt64: OperationRecord] = [:]
    /// The operations by id and by owner (content or retrieval): both sides share it.
    var index = OperationIndex()
    /// Ended operations in end order with their expiry (retention is the same for all).
    var retentionQueue: Deque<(serial: UInt64, expiry: EngineInstant)> = []
    /// Ended operations with a buffer, in end order (serials of forgotten ones are skipped).
    var bufferQueue: Deque<UInt64> = []
    /// Bytes of the buffers its ended operations hold.
    var bufferedBytes = 0 {
        didSet { totals.record(MemoryUsage(readBuffers: bufferedBytes - oldValue), of: principal) }
    }
    /// The sweep that forgets expired operations even when no call comes (at most one at a time).
    var retentionTimer: (any EngineTimer)?
    var statusWaiters: [UInt64: StatusWaiter] = [:] {
        didSet {
            totals.parkedWaiters += statusWaiters.count - countedStatusWaiters
            countedStatusWaiters = statusWaiters.count
        }
    }
    private var countedStatusWaiters = 0
    /// Publications made through this instance and still published.
    var publicationCount = 0
    /// Pending operations (kept by `makeOperation` and `transition`, for the principal's quotas).
    var pendingOperations = 0
    /// Upload bytes reserved by its pending appends (`uploadReservation`).
    var uploadBytesInFlight = 0 {
        didSet { totals.record(MemoryUsage(uploads: uploadBytesInFlight - oldValue), of: principal) }
    }
    /// Buffer bytes reserved by its pending reads (`OperationRecord.readReservation`).
    var readReservations = 0 {
        didSet { totals.record(MemoryUsage(readBuffers: readReservations - oldValue), of: principal) }
    }
    /// Its retrievals' memory, as each last counted it (`recount`).
    var retrievalMemory = MemoryUsage() {
        didSet { totals.record(retrievalMemory - oldValue, of: principal) }
    }
    /// Callers parked on its operations (port and status waiters are counted where they park).
    var operationWaiters = 0 {
        didSet { totals.parkedWaiters += operationWaiters - oldValue }
    }
    /// The engine's totals, which its counts move.
    let totals: EngineTotals
    /// When a call last named the instance (its lease runs from there).
    var lastActivity: EngineInstant
    /// The lease check, armed while the instance lives (nil when leases are off).
    var leaseTimer: (any EngineTimer)?

    /// Callers parked on the instance: port dequeues, operation waits, status waits.
    var parkedWaiters: Int {
        ports.values.reduce(operationWaiters + statusWaiters.count) { $0 + $1.waiters.count }
    }

    /// Open handles that count against the principal: ports other than `default`, streams and
    /// content-information handles and retrievals.
    var openHandles: Int { max(ports.count - 1, 0) + streams.count + contentInfos.count + retrievals.count }

    /// What it holds in memory (the content information its handles share is the principal's).
    var memory: MemoryUsage {
        var memory = retrievalMemory
        memory.readBuffers = bufferedBytes + readReservations
        memory.uploads = uploadBytesInFlight
        return memory
    }

    /// Brings the instance's count of `retrieval`'s memory up to date after it changed.
    func recount(_ retrieval: RetrievalRecord) {
        let now = retrieval.memory
        retrievalMemory.retrievalContentInformation += now.retrievalContentInformation - retrieval.counted.retrievalContentInformation
        retrievalMemory.retrievalData += now.retrievalData - retrieval.counted.retrievalData
        retrieval.counted = now
    }

    /// Removes a retrieval and its memory from the count.
    func removeRetrieval(_ handle: String) {
        guard let retrieval = retrievals.removeValue(forKey: handle) else { return }
        retrievalMemory.retrievalContentInformation -= retrieval.counted.retrievalContentInformation
        retrievalMemory.retrievalData -= retrieval.counted.retrievalData
    }

    /// Takes what the instance still counts out of the engine's totals (it is being removed).
    func releaseCounts() {
        bufferedBytes = 0
        retrievalMemory = MemoryUsage()
        statusWaiters = [:]
        operationWaiters = 0
        for port in ports.values {
            port.waiters = []
            port.queue = []
        }
    }

    init(handle: String, principal: String, createdAt: Date, now: EngineInstant, totals: EngineTotals) {
        self.totals = totals
        self.handle = handle
        self.principal = principal
        self.createdAt = createdAt
        lastActivity = now
        ports = [Self.defaultPortName: PortRecord(name: Self.defaultPortName, totals: totals)]
    }

    /// The operation with this id, pending or retained.
    func operation(id: String) -> OperationRecord? {
        index.serial(id: id).flatMap { operations[$0] }
    }

    /// The operation with this id under `owner`, pending or retained (`nil` when the id belongs to
    /// another owner).
    func operation(owner: OperationOwner, id: String) -> OperationRecord? {
        guard let found = operation(id: id), found.owner == owner else { return nil }
        return found
    }

    /// The operations (pending and retained) of `owner`, oldest first.
    func operations(of owner: OperationOwner) -> [OperationRecord] {
        index.serials(of: owner).compactMap { operations[$0] }.sorted { $0.serial < $1.serial }
    }

    /// Adds a new operation to the records and the index.
    func insert(_ operation: OperationRecord) {
        operations[operation.serial] = operation
        index.insert(operation)
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
        index.remove(operation)
        bufferedBytes -= operation.bufferBytes
    }

    /// Counts the buffer of an operation that just ended, then releases the oldest buffers until
    /// the instance holds at most `limit` bytes of them.
    func retainBuffer(of operation: OperationRecord, limit: Int, operationLimit: Int) {
        let bytes = operation.bufferBytes
        guard bytes > 0 else { return }
        bufferedBytes += bytes
        bufferQueue.append(operation.serial)
        while bufferedBytes > limit, let oldest = bufferQueue.popFirst() {
            bufferedBytes -= operations[oldest]?.releaseBuffer() ?? 0
        }
        if bufferQueue.count > 2 * operationLimit + 16 {
            bufferQueue = Deque(bufferQueue.filter { operations[$0]?.bufferBytes ?? 0 > 0 })
        }
    }
}
