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
    /// operations. The owner's call renews the instance's lease.
    /// - Throws: `EngineError` 1260, 4065 or 6.
    public func checkCall(instance: String, principal: String) throws(EngineError) {
        _ = try locked { (s: inout EngineState) throws(EngineError) -> Bool in
            _ = try s.instanceForCall(instance, principal: principal)
            return true
        }
    }

    /// The check of the calls that work whatever the status (GetStatus, status waits,
    /// Shutdown): an unknown instance, or one another principal started → 6.
    /// - Throws: `EngineError` 6.
    public func checkOwner(instance: String, principal: String) throws(EngineError) {
        _ = try locked { (s: inout EngineState) throws(EngineError) -> Bool in
            _ = try s.instanceIgnoringStatus(instance, principal: principal)
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
            let mine = (state.instancesByPrincipal[principal] ?? [])
                .filter { handle in after.map { handle > $0 } ?? true }
                .sorted()
                .compactMap { state.instances[$0] }
            let page = mine.prefix(max(0, limit))
            let next = mine.count > page.count ? page.last?.handle : nil
            return (page.map { info(of: $0, status: status) }, next)
        }
    }
}
