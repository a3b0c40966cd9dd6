extension PeerDistEngine {
    /// The first checks of every call under an instance, in the contract's order: policy
    /// disabled → 1260; service unavailable → 4065; unknown instance → 6. Lets a caller that
    /// validates its own parameters do so only after these (API.md, order of checks).
    /// - Throws: `EngineError` with one of those codes.
    public func checkCall(instance: String) throws(EngineError) {
        _ = try locked { (s: inout EngineState) throws(EngineError) -> Bool in
            _ = try s.instanceForCall(instance)
            return true
        }
    }

    /// `checkCall(instance:)` for a caller: an instance another principal started answers 6,
    /// exactly as an unknown one (handles are capabilities; API.md, Access). Every handle lives
    /// under an instance, so this one check covers ports, streams, content information and
    /// operations. A call renews the instance's `lastActivityAt`.
    /// - Throws: `EngineError` 1260, 4065 or 6.
    public func checkCall(instance: String, principal: String) throws(EngineError) {
        let now = wallClock.currentDate
        _ = try locked { (s: inout EngineState) throws(EngineError) -> Bool in
            try s.instanceForCall(instance, principal: principal).lastActivityAt = now
            return true
        }
    }

    /// The check of the calls that work whatever the status (GetStatus, status waits,
    /// Shutdown): an unknown instance, or one another principal started → 6.
    /// - Throws: `EngineError` 6.
    public func checkOwner(instance: String, principal: String) throws(EngineError) {
        let now = wallClock.currentDate
        _ = try locked { (s: inout EngineState) throws(EngineError) -> Bool in
            try s.instanceIgnoringStatus(instance, principal: principal).lastActivityAt = now
            return true
        }
    }

    /// A principal's instances, in handle order, a page at a time.
    /// - Parameters:
    ///   - principal: Whose instances.
    ///   - after: The last handle of the previous page (it may have been shut down since); nil =
    ///     from the start.
    ///   - limit: Most instances in the page.
    /// - Returns: The page, and the handle to continue after when more follow.
    public func instances(of principal: String, after: String?, limit: Int) -> (instances: [InstanceInfo], next: String?) {
        state.withLock { state in
            let status = state.controls.status
            let mine = state.instances.values.filter { record in record.principal == principal && (after.map { record.handle > $0 } ?? true) }
                .sorted { $0.handle < $1.handle }
            let page = mine.prefix(max(0, limit))
            let next = mine.count > page.count ? page.last?.handle : nil
            return (page.map { info(of: $0, status: status) }, next)
        }
    }
}
