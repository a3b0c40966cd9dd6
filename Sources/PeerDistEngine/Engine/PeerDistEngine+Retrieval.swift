import BlockCache
import Foundation
import PCCRC

/// What PeerDistClientGetInformationByHandle reports, and the state of a retrieval.
public struct RetrievalInfo: Sendable, Hashable {
    /// Where the retrieval is with its content information.
    public enum ContentInfoState: String, Sendable {
        case collecting, completing, complete
    }

    /// The `retr_…` handle.
    public let handle: String
    /// The content tag.
    public let contentTag: ContentTag
    /// `PEERDIST_CLIENT_BASIC_INFO.fFlashCrowd`: always `false` (no peers, so no crowd).
    public let flashCrowd: Bool
    public let contentInfoState: ContentInfoState
    /// Content information bytes added so far.
    public let contentInfoBytes: Int
    /// Once complete: the content information version and the range reads may touch.
    public let version: Int?
    public let contentRange: Range<UInt64>?
    /// The stream read position.
    public let streamPosition: UInt64
}

/// Retrieval (PeerDistClientOpenContent, CloseContent, AddContentInformation,
/// CompleteContentInformation, AddData, BlockRead, StreamRead, FlushContent,
/// GetInformationByHandle, CancelAsyncOperation), over the service's one block cache.
///
/// Operations of a retrieval are owned by `.retrieval(handle)` in the instance's operation index,
/// bound to the retrieval's port and key, and end exactly once through `transition`, as publishing's
/// do. The engine lock is never held across a `BlockCache` call: the work of AddData, reads,
/// CompleteContentInformation and flushes runs in tasks that take the lock only to look and to end.
extension PeerDistEngine {
    // MARK: - Handles

    /// Opens a retrieval (PeerDistClientOpenContent).
    /// - Parameters:
    ///   - instance: The instance handle.
    ///   - contentTag: The 16-byte tag data added through it is labelled with.
    ///   - port: The port its operations complete to.
    ///   - key: The completion key.
    /// - Returns: The handle (`retr_…`).
    /// - Throws: 1260, 4065 (also when the service has no block cache), 6 (instance, port),
    ///   1816 (`maxRetrievalsPerInstance`, the principal's handles).
    public func openRetrieval(instance: String, contentTag: ContentTag, port: String = "default", key: UInt64 = 0)
        throws(EngineError) -> String
    {
        try locked { state throws(EngineError) in
            let record = try state.instanceForCall(instance)
            _ = try record.port(named: port)
            try requireCache(state)
            guard record.retrievals.count < limits.maxRetrievalsPerInstance else {
                throw .quota(
                    "the instance has \(limits.maxRetrievalsPerInstance) open retrievals",
                    retryAfterSeconds: limits.quotaRetryAfterSeconds)
            }
            try checkQuota(.handle, of: record.principal, in: state)
            let retrieval = RetrievalRecord(handle: HandleKind.retrieval.make(), tag: contentTag, portName: port, key: key)
            record.retrievals[retrieval.handle] = retrieval
            return retrieval.handle
        }
    }

    /// Closes a retrieval (PeerDistClientCloseContent): its pending operations end with 995 (posted,
    /// waiters woken, work stopped) before this returns; they stay readable for `limits.retention`.
    /// Works on an invalidated retrieval.
    /// - Throws: 1260, 4065, 6.
    public func closeRetrieval(instance: String, retrieval: String) async throws(EngineError) {
        let effects = try locked { state throws(EngineError) -> Effects in
            let record = try state.instanceForCall(instance)
            _ = try record.retrieval(retrieval, allowInvalidated: true)
            var effects = Effects()
            abortPending(in: record, result: .operationAborted, detail: "the retrieval was closed", effects: &effects) {
                $0.owner == .retrieval(retrieval)
            }
            record.removeRetrieval(retrieval)
            return effects
        }
        await effects.runAndWait()
    }

    /// PeerDistClientGetInformationByHandle.
    /// - Throws: 1260, 4065, 6, 4057.
    public func retrievalInfo(instance: String, retrieval: String) throws(EngineError) -> RetrievalInfo {
        try locked { state throws(EngineError) in
            let r = try state.instanceForCall(instance).retrieval(retrieval)
            let stateName: RetrievalInfo.ContentInfoState
            switch r.contentInfo {
            case .collecting: stateName = .collecting
            case .completing: stateName = .completing
            case .complete: stateName = .complete
            }
            return RetrievalInfo(
                handle: r.handle, contentTag: r.tag, flashCrowd: false, contentInfoState: stateName,
                contentInfoBytes: r.layout == nil ? r.contentInfoBytes.count : r.contentInfoByteCount, version: r.layout?.version, contentRange: r.layout?.readRange,
                streamPosition: r.streamPosition)
        }
    }

    /// PeerDistClientCancelAsyncOperation with a NULL OVERLAPPED: every pending operation of the
    /// retrieval ends with 995 (posted, waiters woken, work stopped) before this returns.
    /// - Returns: The operations it cancelled, in their final state, oldest first.
    /// - Throws: 1260, 4065, 6.
    public func cancelAll(instance: String, retrieval: String) async throws(EngineError) -> [OperationSnapshot] {
        let (snapshots, effects) = try locked { state throws(EngineError) -> ([OperationSnapshot], Effects) in
            let record = try state.instanceForCall(instance)
            _ = try record.retrieval(retrieval, allowInvalidated: true)
            var effects = Effects()
            var cancelled: [OperationSnapshot] = []
            for operation in record.operations(of: .retrieval(retrieval)) where operation.isPending {
                if abortLocked(
                    operation, in: record, result: .operationAborted, detail: "the operation was cancelled", effects: &effects)
                {
                    cancelled.append(operation.snapshot(includeBuffer: false))
                }
            }
            return (cancelled, effects)
        }
        await effects.runAndWait()
        return snapshots
    }

    // MARK: - Content information

    /// PeerDistClientAddContentInformation: appends a portion (in the order of these calls) and
    /// ends with `bytesTransferred` = the portion's length.
    /// - Throws: 1260, 4065, 6, 4057, 87 (operation id), 87 marked `isTooLarge` past
    ///   `maxRetrievalContentInfoBytes` (nothing added), 4055 once complete or completing, 4058, 1816.
    public func addContentInformation(instance: String, retrieval: String, bytes: [UInt8], operation: String? = nil)
        throws(EngineError) -> StartedOperation
    {
        try startClientOperation(
            instance: instance, retrieval: retrieval, kind: .clientAddContentInformation, operation: operation,
            memory: bytes.count
        ) {
            r throws(EngineError) in
            guard case .collecting = r.contentInfo else {
                throw EngineError(.alreadyInitialized, "the content information is already complete")
            }
            guard bytes.count <= limits.maxRetrievalContentInfoBytes - r.contentInfoBytes.count else {
                throw .tooLarge("a retrieval's content information is at most \(limits.maxRetrievalContentInfoBytes) bytes")
            }
        } start: { op, r, _ in
            r.contentInfoBytes.append(contentsOf: bytes)
            return .end(.finished(.success, bytes: UInt64(bytes.count)))
        }
    }

    /// PeerDistClientCompleteContentInformation: parses what was added. It ends with 4051 when the
    /// structure is malformed, 4050 when its version is not 1.0 or 2.0; on success reads may start,
    /// and the data AddData kept meanwhile is verified into the cache before it ends.
    /// - Throws: 1260, 4065, 6, 4057, 87, 4060 when complete or completing, 4058, 1816.
    public func completeContentInformation(instance: String, retrieval: String, operation: String? = nil)
        throws(EngineError) -> StartedOperation
    {
        try startClientOperation(
            instance: instance, retrieval: retrieval, kind: .clientCompleteContentInformation, operation: operation
        ) { r throws(EngineError) in
            guard case .collecting = r.contentInfo else {
                throw EngineError(.alreadyCompleted, "the content information is already complete or completing")
            }
        } start: { op, r, _ in
            r.contentInfo = .completing(serial: op.serial)
            let bytes = r.contentInfoBytes
            return .work { [self] handle, serial in
                await self.runComplete(instance: instance, retrieval: handle, serial: serial, bytes: bytes)
            }
        }
    }

    // MARK: - Data

    /// PeerDistClientAddData at an absolute offset, its bytes fed through the returned feed. With
    /// the content information complete, the blocks (V1) or segments (V2) the bytes cover are
    /// verified into the cache (a partial one is staged until the rest arrives); the operation ends
    /// with `bytesTransferred` = the bytes accepted (those before the content's end), or 4061 when
    /// `offset` is at or past the end (the feed then refuses the bytes). Before that, the bytes are
    /// kept (at most `maxRetrievalPendingDataBytes` per retrieval: past it the operation ends with
    /// 1816) and stored once it completes.
    /// - Parameters:
    ///   - expectedLength: The body length when known (Content-Length).
    /// - Throws: 1260, 4065, 6, 4057, 87 (empty body, operation id), 1816 (a declared length past
    ///   the kept-data bound, quotas), 4058.
    public func beginAddData(
        instance: String, retrieval: String, offset: UInt64, expectedLength: Int?, operation: String? = nil
    ) throws(EngineError) -> AddDataFeed {
        var outOfBounds = false
        let started = try startClientOperation(
            instance: instance, retrieval: retrieval, kind: .clientAddData, operation: operation,
            expectedLength: expectedLength.map { UInt64(max($0, 0)) }
        ) { r throws(EngineError) in
            if let expectedLength {
                guard expectedLength > 0 else { throw .invalidParameter("AddData needs at least one byte") }
                if r.layout == nil, expectedLength > limits.maxRetrievalPendingDataBytes - r.pendingDataBytes {
                    throw keptDataQuota()
                }
            }
        } start: { _, r, _ in
            guard let layout = r.layout, offset >= layout.contentEnd else { return .queued }
            outOfBounds = true
            return .end(.finished(.outOfBounds, offset: offset))
        }
        return AddDataFeed(
            engine: self, instance: instance, retrieval: retrieval, serial: started.serial, offset: offset,
            ended: outOfBounds, started: started)
    }

    /// Where a feed's bytes go now.
    enum FeedTarget {
        /// Kept until the content information is complete.
        case keep
        /// Stored under this layout, for the retrieval's principal and tag.
        case store(RetrievalLayout, CacheHold)
    }

    /// Throws the operation's end once it has ended.
    func checkFeedPending(instance: String, serial: UInt64) throws(EngineError) {
        try locked { state throws(EngineError) in _ = try pendingFeedOperation(state, instance: instance, serial: serial) }
    }

    func feedTarget(instance: String, retrieval: String, serial: UInt64) throws(EngineError) -> FeedTarget {
        try locked { state throws(EngineError) in
            _ = try pendingFeedOperation(state, instance: instance, serial: serial)
            guard let record = state.instances[instance], let r = record.retrievals[retrieval] else {
                throw .invalidHandle("retrieval")
            }
            guard let layout = r.layout else { return .keep }
            return .store(layout, CacheHold(principal: record.principal, tag: r.tag))
        }
    }

    /// Keeps bytes until the content information is complete; past the bound the operation ends
    /// with 1816 and this throws.
    func keepPending(instance: String, retrieval: String, serial: UInt64, offset: UInt64, bytes: [UInt8])
        throws(EngineError)
    {
        let (effects, refusal) = try locked { state throws(EngineError) -> (Effects, EngineError?) in
            let operation = try pendingFeedOperation(state, instance: instance, serial: serial)
            guard let record = state.instances[instance], let r = record.retrievals[retrieval] else {
                throw .invalidHandle("retrieval")
            }
            var effects = Effects()
            let refused: EngineError?
            if bytes.count > limits.maxRetrievalPendingDataBytes - r.pendingDataBytes {
                refused = keptDataQuota()
            } else {
                do throws(EngineError) {
                    try checkQuota(.memory(bytes.count), of: record.principal, in: state)
                    refused = nil
                } catch {
                    refused = error
                }
            }
            if let refused {
                finishNaturallyLocked(
                    operation, in: record, .failed(.notEnoughQuota), honorDelay: false, state: &state, effects: &effects)
                return (effects, refused)
            }
            r.pendingData.append(RetrievalRecord.PendingData(offset: offset, bytes: bytes))
            r.pendingDataBytes += bytes.count
            record.recount(r)
            return (effects, nil)
        }
        effects.run()
        if let refusal { throw refusal }
    }

    private func pendingFeedOperation(_ state: EngineState, instance: String, serial: UInt64) throws(EngineError)
        -> OperationRecord
    {
        guard let operation = state.instances[instance]?.operations[serial] else {
            throw EngineError(.operationAborted, "the instance was shut down")
        }
        guard operation.isPending else {
            throw EngineError(operation.snapshot(includeBuffer: false).result, "the operation has ended")
        }
        return operation
    }

    private func keptDataQuota() -> EngineError {
        .quota(
            "the retrieval keeps \(limits.maxRetrievalPendingDataBytes) bytes until its content information is complete",
            retryAfterSeconds: limits.quotaRetryAfterSeconds)
    }

    // MARK: - Reads

    /// PeerDistClientBlockRead (`offset` given) or PeerDistClientStreamRead (`offset` nil: the
    /// retrieval's position; stream reads are served one at a time, in order).
    ///
    /// It ends as soon as any bytes are in the cache at its offset (at most `maxBytes`, capped by
    /// `limits.maxReadBytes`), with `offset` where they start; `maxBytes` 0 ends with the count of
    /// contiguous cached bytes there. A miss ends with 4052 (`timeout` nil: the cache only) or,
    /// after waiting `timeout` for an AddData (of any instance) to supply the bytes, 1460, `offset`
    /// and `bytesTransferred` giving the missing range, clipped to the content information's range.
    /// Outside that range: 4053. A stream read moves the position by the bytes read or the missing
    /// range.
    /// - Parameters:
    ///   - timeout: `nil` = the local cache only (timeoutMs 0); else at most `limits.maxReadTimeout`.
    ///   - runsInline: The caller waits for the read and will run its `work` itself when the read
    ///     reads the local cache only (it then saves the hand-off to a task of its own and back).
    /// - Throws: 1260, 4065, 6, 4057, 87 (negative `maxBytes`, timeout, operation id), 4054 when
    ///   the content information is not complete, 4058, 1816.
    public func read(
        instance: String, retrieval: String, offset: UInt64?, maxBytes: Int, timeout: Duration?, operation: String? = nil,
        runsInline: Bool = false
    ) throws(EngineError) -> StartedOperation {
        let mode: ReadRequest.Mode = offset == nil ? .stream : .block
        return try startClientOperation(
            instance: instance, retrieval: retrieval, kind: mode == .block ? .clientBlockRead : .clientStreamRead,
            operation: operation, readBytes: min(max(maxBytes, 0), limits.maxReadBytes), runsWorkInline: runsInline && timeout == nil
        ) { r throws(EngineError) in
            guard maxBytes >= 0 else { throw .invalidParameter("maxBytes must not be negative") }
            if let timeout, timeout <= .zero || timeout > limits.maxReadTimeout {
                throw .invalidParameter("timeoutMs must be 0 to \(limits.maxReadTimeout)")
            }
            guard r.layout != nil else {
                throw EngineError(.notInitialized, "the content information is not complete: reads wait for CompleteContentInformation")
            }
        } start: { [self] op, r, effects in
            let signal = WakeSignal()
            let request = ReadRequest(
                mode: mode, offset: offset ?? 0, maxBytes: min(maxBytes, limits.maxReadBytes), timeout: timeout,
                signal: signal)
            r.reads[op.serial] = request
            if let timeout {
                let timer = clock.schedule(at: clock.now.advanced(by: timeout)) { signal.fire(.timeout) }
                r.readTimers[op.serial] = timer
            }
            if mode == .stream {
                r.streamReads.append(op.serial)
                guard r.streamReads.count == 1 else { return .queued }
            }
            return .work { [self] handle, serial in
                await self.runRead(instance: instance, retrieval: handle, serial: serial)
            }
        }
    }

    // MARK: - Flush

    /// PeerDistClientFlushContent: removes from the cache what the instance's principal added under
    /// `contentTag` (a tag is the pair of principal and tag: another principal's data under the same
    /// tag stays); an entry goes once no principal holds it. Ends with `bytesTransferred` = the
    /// entries the principal let go of (the same whether or not another principal holds them). Its
    /// operation belongs to the instance (`/instances/{h}/operations/{op}`).
    /// - Throws: 1260, 4065, 6 (instance, port), 87 (operation id), 4058, 1816.
    public func flush(instance: String, contentTag tag: ContentTag, port: String = "default", key: UInt64 = 0, operation: String? = nil)
        throws(EngineError) -> StartedOperation
    {
        let (started, effects) = try locked { state throws(EngineError) -> (StartedOperation, Effects) in
            let record = try state.instanceForCall(instance)
            _ = try record.port(named: port)
            if let operation { try Validation.operationId(operation) }
            try requireCache(state)
            let op = try makeOperation(
                in: record, state: &state, kind: .clientFlushContent, contentId: tag.bytes, handle: "", owner: .instance,
                portName: port, key: key, requestedId: operation)
            let serial = op.serial
            let principal = record.principal
            op.work = OperationWork(settle: { _ in }, abort: { _ in })
            var effects = Effects()
            effects.actions.append { [self] in
                Task {
                    let removed = await self.blockCache?.flush(tag: tag, by: principal) ?? 0
                    self.finishNaturally(instance: instance, serial: serial, .outcome(.finished(.success, bytes: UInt64(removed))))
                }
            }
            return (StartedOperation(engine: self, record: op), effects)
        }
        effects.run()
        return started
    }

    // MARK: - Internal: the transition's hooks

    /// Under the lock, in the transition: a CompleteContentInformation that parsed puts its layout in
    /// force (unless the retrieval is gone or no longer completing through it).
    func completeRetrieval(
        _ operation: OperationRecord, in instance: InstanceRecord, layout: RetrievalLayout, contentInfoBytes: UInt64,
        state: EngineState
    ) -> OperationRecord.Outcome {
        guard let r = instance.retrievals[operation.handle], case .completing(let serial) = r.contentInfo,
            serial == operation.serial
        else { return .finished(.invalidHandle) }
        // The layout replaces the structure in the principal's memory: what it takes beyond it must fit.
        let growth = layout.memoryBytes - r.contentInfoBytes.count
        if growth > 0 {
            do throws(EngineError) {
                try checkQuota(.memory(growth), of: instance.principal, in: state)
            } catch {
                return .finished(.notEnoughQuota)
            }
        }
        defer { instance.recount(r) }
        r.layoutBytes = layout.memoryBytes
        r.contentInfo = .complete(layout)
        // Stream reads start where the content information's range does.
        r.streamPosition = layout.readRange.lowerBound
        // The layout holds what reads need; the structure itself is not kept.
        r.contentInfoBytes = []
        r.contentInfoByteCount = Int(contentInfoBytes)
        return .finished(.success, bytes: contentInfoBytes)
    }

    /// Under the lock, in the transition: keeps a retrieval in step with its operations' ends
    /// (content information state, read bookkeeping, the stream position and the next stream read).
    func updateRetrieval(
        after operation: OperationRecord, in instance: InstanceRecord, outcome: OperationRecord.Outcome,
        effects: inout Effects
    ) {
        guard case .retrieval(let handle) = operation.owner, let r = instance.retrievals[handle] else { return }
        switch operation.kind {
        case .clientCompleteContentInformation:
            if case .completing(let serial) = r.contentInfo, serial == operation.serial { r.contentInfo = .collecting }
            if let layout = r.layout, !r.pendingData.isEmpty {
                // AddData that came while it completed: stored now.
                let pieces = r.takePendingData()
                instance.recount(r)
                let hold = CacheHold(principal: instance.principal, tag: r.tag)
                effects.actions.append { [self] in
                    Task { _ = await self.store(pieces, layout: layout, for: hold) }
                }
            }
        case .clientBlockRead, .clientStreamRead:
            let request = r.reads.removeValue(forKey: operation.serial)
            if let timer = r.readTimers.removeValue(forKey: operation.serial) {
                effects.actions.append { timer.cancel() }
            }
            if let signal = request?.signal { effects.actions.append { signal.fire(.aborted) } }
            guard operation.kind == .clientStreamRead else { return }
            guard r.streamReads.first == operation.serial else {
                r.streamReads.removeAll { $0 == operation.serial }
                return
            }
            r.streamReads.removeFirst()
            let moves = [Win32Error.success, .missingData, .timeout].contains(outcome.result)
            if moves, (request?.maxBytes ?? 0) > 0 {
                r.streamPosition = outcome.offset + outcome.bytesTransferred
            }
            if let next = r.streamReads.first {
                let instanceHandle = instance.handle
                effects.actions.append { [self] in
                    Task { await self.runRead(instance: instanceHandle, retrieval: handle, serial: next) }
                }
            }
        default:
            break
        }
    }

    // MARK: - Private: starting

    /// How a client operation starts once accepted.
    enum ClientStart {
        /// It ends now (honouring a fault delay).
        case end(OperationRecord.Outcome)
        /// Its work runs in a task (retrieval handle, operation serial).
        case work(@Sendable (String, UInt64) async -> Void)
        /// It waits for its turn (a stream read behind another).
        case queued
    }

    /// The common start of a retrieval's operation: checks (policy, availability, instance,
    /// retrieval, invalidation, operation id, then `check`), the operation bound to the retrieval's
    /// port and key, then `start`.
    private func startClientOperation(
        instance: String, retrieval: String, kind: OperationKind, operation: String?, expectedLength: UInt64? = nil,
        memory: Int = 0, readBytes: Int = 0, runsWorkInline: Bool = false,
        check: (RetrievalRecord) throws(EngineError) -> Void,
        start: (OperationRecord, RetrievalRecord, inout Effects) -> ClientStart
    ) throws(EngineError) -> StartedOperation {
        let (started, effects) = try locked { state throws(EngineError) -> (StartedOperation, Effects) in
            let record = try state.instanceForCall(instance)
            let r = try record.retrieval(retrieval)
            if let operation { try Validation.operationId(operation) }
            try check(r)
            if memory > 0 { try checkQuota(.memory(memory), of: record.principal, in: state) }
            let op = try makeOperation(
                in: record, state: &state, kind: kind, contentId: r.tag.bytes, handle: retrieval, owner: .retrieval(retrieval),
                portName: r.portName, key: r.key, requestedId: operation, expectedLength: expectedLength, readBytes: readBytes)
            var effects = Effects()
            var inline: (@Sendable () async -> Void)?
            let begun = start(op, r, &effects)
            record.recount(r)
            switch begun {
            case .end(let outcome):
                finishNaturallyLocked(op, in: record, .outcome(outcome), honorDelay: true, state: &state, effects: &effects)
            case .work(let body):
                let serial = op.serial
                op.work = OperationWork(settle: { _ in }, abort: { _ in })
                if runsWorkInline {
                    inline = { await body(retrieval, serial) }
                } else {
                    effects.actions.append { Task { await body(retrieval, serial) } }
                }
            case .queued:
                break
            }
            return (StartedOperation(engine: self, record: op, work: inline), effects)
        }
        effects.run()
        return started
    }

    private func requireCache(_ state: EngineState) throws(EngineError) {
        guard blockCache != nil else {
            throw EngineError(
                .serviceUnavailable, "the service has no block cache", retryAfterSeconds: state.controls.retryAfterSeconds)
        }
    }
}

extension PeerDistEngine {
    /// Reads parked waiting for an AddData, across instances (for tests that must know a read is
    /// waiting before they supply its data).
    public var waitingReadCount: Int {
        state.withLock { $0.readWaiters.values.reduce(0) { $0 + $1.count } }
    }
}
