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
        try checkCall(instance: instance, principal: principal, handles: CallHandles())
    }

    /// `checkCall(instance:principal:)`, then every handle the call's path names under the
    /// instance: an unknown or closed one → 6, before anything else of the call is looked at (an
    /// operation of an unknown retrieval is 6, not 4059), as Windows answers a call on a handle that
    /// is not open. A closed retrieval passes while it has retained operations, which its operation
    /// routes keep answering (API.md); its other calls then refuse it themselves. Whether a handle
    /// belongs to the call's content, or was invalidated (4057), is the call's own check.
    /// - Throws: `EngineError` 1260, 4065 or 6.
    public func checkCall(instance: String, principal: String, handles: CallHandles) throws(EngineError) {
        _ = try locked { (s: inout EngineState) throws(EngineError) -> Bool in
            let record = try s.instanceForCall(instance, principal: principal)
            if let port = handles.port { _ = try record.port(named: port) }
            if let stream = handles.stream, record.streams[stream] == nil { throw .invalidHandle("stream") }
            if let reader = handles.contentInfo, record.contentInfos[reader] == nil {
                throw .invalidHandle("content information")
            }
            if let retrieval = handles.retrieval, record.retrievals[retrieval] == nil {
                // A closed retrieval's operations stay readable at its routes for their retention.
                purgeExpired(record)
                guard !record.index.serials(of: .retrieval(retrieval)).isEmpty else { throw .invalidHandle("retrieval") }
            }
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
    ///   - pageToken: The previous page's `next` (its last instance may have been shut down since);
    ///     nil = from the start.
    ///   - limit: Most instances in the page.
    /// - Returns: The page, and the page token of the next one when more follow.
    /// - Throws: 87 when the page token is malformed or was given to another principal.
    public func instances(of principal: String, pageToken: String?, limit: Int) throws(EngineError)
        -> (instances: [InstanceInfo], next: String?)
    {
        let scope = PageTokenCodec.scope("instances", principal)
        let after = try pageToken.map { (token: String) throws(EngineError) -> String in
            guard let cursor = pageTokens.open(token, scope: scope) else { throw .invalidParameter("malformed pageToken") }
            return String(decoding: cursor, as: UTF8.self)
        }
        return state.withLock { state in
            let status = state.controls.status
            let mine = (state.instancesByPrincipal[principal] ?? [])
                .filter { handle in after.map { handle > $0 } ?? true }
                .sorted()
                .compactMap { state.instances[$0] }
            let page = mine.prefix(max(0, limit))
            let next = mine.count > page.count ? page.last.map { pageTokens.seal(Array($0.handle.utf8), scope: scope) } : nil
            return (page.map { info(of: $0, status: status) }, next)
        }
    }
}

/// The handles a call's path names under its instance, each nil when the path has none.
public struct CallHandles: Sendable, Hashable {
    /// A completion port's name (`default` or `port_…`).
    public var port: String?
    /// A publishing stream handle.
    public var stream: String?
    /// A content-information handle.
    public var contentInfo: String?
    /// A retrieval handle.
    public var retrieval: String?

    /// Names the handles.
    public init(port: String? = nil, stream: String? = nil, contentInfo: String? = nil, retrieval: String? = nil) {
        self.port = port
        self.stream = stream
        self.contentInfo = contentInfo
        self.retrieval = retrieval
    }
}
