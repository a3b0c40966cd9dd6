import Base64URL
/// Operations: reading, listing, waiting (GetOverlappedResult) and cancelling
/// (PeerDistServerCancelAsyncOperation).
extension PeerDistEngine {
    // MARK: - Constants

    /// Default and largest page size of operation lists.
    public static let defaultPageSize = 100
    /// Largest page size of operation lists.
    public static let maxPageSize = 1_000

    // MARK: - API

    /// An operation of a content, with the buffer of a read that ended.
    /// - Parameters:
    ///   - instance: The instance handle.
    ///   - contentId: The content identifier's bytes.
    ///   - operation: The operation id.
    /// - Returns: The snapshot.
    /// - Throws: 1260, 4065, 6, 87 (content id, operation id), 4059 when no operation (pending or
    ///   retained) has that id for that content.
    public func operation(instance: String, contentId: [UInt8], operation: String) throws(EngineError)
        -> OperationSnapshot
    {
        try self.operation(instance: instance, owner: .content(contentId), operation: operation)
    }

    /// An operation of an owner (a content, a retrieval), or of the whole instance when `owner` is
    /// `nil` (`/instances/{h}/operations/{op}`), with the buffer of a read that ended.
    /// - Throws: 1260, 4065, 6, 87 (content id, operation id), 4059 when no operation (pending or
    ///   retained) has that id for that owner.
    public func operation(instance: String, owner: OperationOwner?, operation: String) throws(EngineError)
        -> OperationSnapshot
    {
        try locked { state throws(EngineError) in
            try findOperation(state, instance: instance, owner: owner, operation: operation).snapshot(includeBuffer: true)
        }
    }

    /// An operation of the instance, whatever its content (`/instances/{h}/operations/{op}`), with the
    /// buffer of a read that ended.
    /// - Parameters:
    ///   - instance: The instance handle.
    ///   - operation: The operation id.
    /// - Returns: The snapshot.
    /// - Throws: 1260, 4065, 6, 87 (operation id), 4059 when no operation has that id.
    public func operation(instance: String, operation: String) throws(EngineError) -> OperationSnapshot {
        try self.operation(instance: instance, owner: nil, operation: operation)
    }

    /// Lists operations (pending and retained), in creation order, paged.
    /// - Parameters:
    ///   - instance: The instance handle.
    ///   - contentId: Only this content's operations; `nil` for all of the instance (unless `owner`).
    ///   - owner: Only this owner's operations (a retrieval's, say); `contentId` takes precedence.
    ///   - state: Only operations in this state; `nil` for all.
    ///   - pageSize: 1 to 1,000 (default 100).
    ///   - pageToken: The previous page's `nextPageToken`, `nil` for the first page.
    /// - Returns: One page, without buffers.
    /// - Throws: 1260, 4065, 6, 87 (content id, page size, malformed token).
    public func listOperations(
        instance: String, contentId: [UInt8]? = nil, owner: OperationOwner? = nil, state filter: OperationState? = nil,
        pageSize: Int = PeerDistEngine.defaultPageSize, pageToken: String? = nil
    ) throws(EngineError) -> OperationPage {
        try locked { state throws(EngineError) in
            let record = try state.instanceForCall(instance)
            if let contentId { try Validation.contentId(contentId) }
            guard (1...Self.maxPageSize).contains(pageSize) else {
                throw .invalidParameter("pageSize must be 1 to \(Self.maxPageSize)")
            }
            let scope = contentId.map { OperationOwner.content($0) } ?? owner
            let tokenScope = Self.pageScope(of: record, owner: scope, state: filter)
            let after = try pageToken.map { (token: String) throws(EngineError) -> UInt64 in
                guard let cursor = pageTokens.open(token, scope: tokenScope), cursor.count == 8 else {
                    throw .invalidParameter("malformed pageToken")
                }
                return cursor.reduce(0) { $0 << 8 | UInt64($1) }
            } ?? 0
            purgeExpired(record)
            let candidates = scope.map { record.operations(of: $0) }
                ?? record.operations.values.sorted { $0.serial < $1.serial }
            let matching = candidates.filter { operation in
                operation.serial > after && (filter.map { operation.state == $0 } ?? true)
            }
            let page = matching.prefix(pageSize)
            let next = matching.count > pageSize
                ? page.last.map { last in
                    pageTokens.seal(withUnsafeBytes(of: last.serial.bigEndian) { Array($0) }, scope: tokenScope)
                }
                : nil
            return OperationPage(operations: page.map { $0.snapshot(includeBuffer: false) }, nextPageToken: next)
        }
    }

    /// Waits for an operation to end (GetOverlappedResult with bWait, or a wait on its event).
    /// - Parameters:
    ///   - instance: The instance handle.
    ///   - contentId: The content identifier's bytes.
    ///   - operation: The operation id.
    ///   - timeout: How long to wait; 0 = do not wait; capped at `limits.maxWait`.
    /// - Returns: The ended operation, or the pending one at the timeout.
    /// - Throws: 1260, 4065, 6, 87, 4059 (unknown), 1816 past `maxWaitersPerOperation`,
    ///   995 when the calling task is cancelled.
    public func waitOperation(instance: String, contentId: [UInt8], operation: String, timeout: Duration)
        async throws(EngineError) -> OperationSnapshot
    {
        try await waitOperation(instance: instance, owner: .content(contentId), operation: operation, timeout: timeout)
    }

    /// `waitOperation` for an operation of any owner, or of the whole instance when `owner` is `nil`.
    /// - Throws: As `waitOperation(instance:contentId:operation:timeout:)`.
    public func waitOperation(instance: String, owner: OperationOwner?, operation: String, timeout: Duration)
        async throws(EngineError) -> OperationSnapshot
    {
        let waiterID = state.withLock { $0.nextSerial() }
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation {
                (continuation: CheckedContinuation<Result<OperationSnapshot, EngineError>, Never>) in
                let immediate = state.withLock { state -> Result<OperationSnapshot, EngineError>? in
                    do throws(EngineError) {
                        return try registerOperationWaiter(
                            &state, instance: instance, owner: owner, operation: operation,
                            timeout: timeout, waiterID: waiterID, continuation: continuation
                        ).map { .success($0) }
                    } catch {
                        return .failure(error)
                    }
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            removeOperationWaiter(instance: instance, waiterID: waiterID, with: .failure(.waitCancelled))
        }
        return try result.get()
    }

    /// Cancels a pending operation, as PeerDistServerCancelAsyncOperation does.
    ///
    /// Synchronous from the caller's view: it returns only after the final result (995) has been
    /// posted to the operation's port, its waiters have been woken and its work in progress has stopped.
    /// It posts only if nothing was posted before: an operation that already ended keeps its result and
    /// the call throws 4059.
    /// - Parameters:
    ///   - instance: The instance handle.
    ///   - contentId: The content identifier's bytes.
    ///   - operation: The operation id.
    /// - Returns: The operation in its final state (`canceled`, result 995).
    /// - Throws: 1260, 4065, 6, 87 (content id, operation id), 4059 when no pending operation has that
    ///   id for that content (unknown, already ended or other content).
    public func cancel(instance: String, contentId: [UInt8], operation: String) async throws(EngineError)
        -> OperationSnapshot
    {
        try await cancel(instance: instance, owner: .content(contentId), operation: operation)
    }

    /// `cancel` for an operation of any owner (PeerDistClientCancelAsyncOperation for a retrieval's).
    /// - Throws: As `cancel(instance:contentId:operation:)`.
    public func cancel(instance: String, owner: OperationOwner, operation: String) async throws(EngineError)
        -> OperationSnapshot
    {
        let (snapshot, effects) = try locked { state throws(EngineError) -> (OperationSnapshot, Effects) in
            let target = try findOperation(state, instance: instance, owner: owner, operation: operation)
            guard target.isPending, let record = state.instances[instance] else {
                throw EngineError(.operationNotFound, "operation '\(operation)' has already ended")
            }
            var effects = Effects()
            abortLocked(target, in: record, result: .operationAborted, detail: "the operation was cancelled", effects: &effects)
            return (target.snapshot(includeBuffer: true), effects)
        }
        await effects.runAndWait()
        return snapshot
    }

    // MARK: - Private

    /// The operation `operation` of `owner` (of any owner when `nil`) in the instance's one index.
    private func findOperation(_ state: EngineState, instance: String, owner: OperationOwner?, operation: String)
        throws(EngineError) -> OperationRecord
    {
        let record = try state.instanceForCall(instance)
        if case .content(let contentId) = owner { try Validation.contentId(contentId) }
        try Validation.operationId(operation)
        purgeExpired(record)
        guard let found = owner.map({ record.operation(owner: $0, id: operation) }) ?? record.operation(id: operation)
        else {
            let scope = switch owner {
            case .content: "for this content"
            case .retrieval: "for this retrieval"
            case .instance, nil: "in this instance"
            }
            throw EngineError(.operationNotFound, "no operation '\(operation)' \(scope)")
        }
        return found
    }

    /// Returns the snapshot to answer at once, or `nil` when the waiter was parked.
    private func registerOperationWaiter(
        _ state: inout EngineState, instance: String, owner: OperationOwner?, operation: String, timeout: Duration,
        waiterID: UInt64, continuation: CheckedContinuation<Result<OperationSnapshot, EngineError>, Never>
    ) throws(EngineError) -> OperationSnapshot? {
        let target = try findOperation(state, instance: instance, owner: owner, operation: operation)
        let wait = try cappedWait(timeout)
        if Task.isCancelled { throw .waitCancelled }
        guard target.isPending, wait > .zero else { return target.snapshot(includeBuffer: true) }
        guard target.waiters.count < limits.maxWaitersPerOperation else {
            throw .quota(
                "\(limits.maxWaitersPerOperation) callers already wait on this operation",
                retryAfterSeconds: limits.quotaRetryAfterSeconds)
        }
        let record = try state.instanceIgnoringStatus(instance)
        try checkQuota(.parkedWaiter, of: record.principal, in: state)
        let timer = clock.schedule(at: clock.now.advanced(by: wait)) { [self] in
            removeOperationWaiter(instance: instance, waiterID: waiterID, with: nil)
        }
        target.waiters[waiterID] = OperationRecord.Waiter(continuation: continuation, timer: timer)
        record.operationWaiters += 1
        return nil
    }

    /// Removes a parked operation waiter (timeout: `result` nil answers the current snapshot; task
    /// cancellation: the error). Does nothing when it was already woken.
    private func removeOperationWaiter(
        instance: String, waiterID: UInt64, with result: Result<OperationSnapshot, EngineError>?
    ) {
        let found = state.withLock { state -> (OperationRecord.Waiter, OperationSnapshot)? in
            guard let record = state.instances[instance] else { return nil }
            for operation in record.operations.values {
                if let waiter = operation.waiters.removeValue(forKey: waiterID) {
                    record.operationWaiters -= 1
                    return (waiter, operation.snapshot(includeBuffer: true))
                }
            }
            return nil
        }
        guard let (waiter, snapshot) = found else { return }
        waiter.timer?.cancel()
        waiter.continuation.resume(returning: result ?? .success(snapshot))
    }

    /// What a listing's page token is bound to: the instance's principal, the instance, the owner
    /// listed and the state filter, so that a token opens only in the listing it was given for.
    private static func pageScope(of instance: InstanceRecord, owner: OperationOwner?, state: OperationState?) -> [UInt8] {
        let ownerField = switch owner {
        case nil: "all"
        case .content(let id)?: "content:" + Base64URL.encode(id)
        case .retrieval(let handle)?: "retrieval:" + handle
        case .instance?: "instance"
        }
        return PageTokenCodec.scope("operations", instance.principal, instance.handle, ownerField, state?.rawValue ?? "")
    }
}
