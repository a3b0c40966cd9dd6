/// The first steps of the order of checks (API.md, Conventions): policy, availability, handles.
extension EngineState {
    /// Policy disabled → 1260; unavailable → 4065 with `retryAfterSeconds`; unknown instance → 6.
    func instanceForCall(_ handle: String) throws(EngineError) -> InstanceRecord {
        try checkControls()
        return try instanceIgnoringStatus(handle)
    }

    /// `instanceForCall`, and an instance of another principal → 6, exactly as an unknown one.
    func instanceForCall(_ handle: String, principal: String) throws(EngineError) -> InstanceRecord {
        try checkControls()
        return try instanceIgnoringStatus(handle, principal: principal)
    }

    /// Unknown instance → 6, whatever the status (startup, status, status waits, shutdown). A call
    /// that finds its instance renews the instance's lease.
    func instanceIgnoringStatus(_ handle: String) throws(EngineError) -> InstanceRecord {
        let record = try existingInstance(handle)
        record.lastActivity = clock.now
        return record
    }

    /// Unknown instance, or one of another principal → 6, whatever the status. Only the owner's
    /// call renews the lease.
    func instanceIgnoringStatus(_ handle: String, principal: String) throws(EngineError) -> InstanceRecord {
        let record = try existingInstance(handle)
        guard record.principal == principal else { throw .invalidHandle("instance") }
        record.lastActivity = clock.now
        return record
    }

    private func existingInstance(_ handle: String) throws(EngineError) -> InstanceRecord {
        guard let instance = instances[handle] else { throw .invalidHandle("instance") }
        return instance
    }

    private func checkControls() throws(EngineError) {
        guard controls.policyEnabled else {
            throw EngineError(.accessDisabledByPolicy, "PeerDist is disabled by policy")
        }
        guard controls.available else {
            throw EngineError(
                .serviceUnavailable, "the PeerDist service is unavailable",
                retryAfterSeconds: controls.retryAfterSeconds)
        }
    }
}

extension InstanceRecord {
    /// The port named `name` (`default` or `port_…`), else 6.
    func port(named name: String) throws(EngineError) -> PortRecord {
        guard let port = ports[name] else { throw .invalidHandle("port") }
        return port
    }

    /// An open stream of this content: unknown or of other content → 6; invalidated → 4057.
    func stream(_ handle: String, contentId: [UInt8], allowInvalidated: Bool = false) throws(EngineError)
        -> StreamRecord
    {
        guard let stream = streams[handle], stream.contentId == contentId else { throw .invalidHandle("stream") }
        guard allowInvalidated || !stream.invalidated else {
            throw EngineError(.invalidated, "the stream was invalidated by a service status change; close it")
        }
        return stream
    }

    /// An open retrieval: unknown or closed → 6; invalidated → 4057.
    func retrieval(_ handle: String, allowInvalidated: Bool = false) throws(EngineError) -> RetrievalRecord {
        guard let retrieval = retrievals[handle] else { throw .invalidHandle("retrieval") }
        guard allowInvalidated || !retrieval.invalidated else {
            throw EngineError(.invalidated, "the retrieval was invalidated by a service status change; close it")
        }
        return retrieval
    }

    /// An open content-information handle of this content: unknown or of other content → 6;
    /// invalidated → 4057.
    func contentInfo(_ handle: String, contentId: [UInt8], allowInvalidated: Bool = false) throws(EngineError)
        -> ContentInfoRecord
    {
        guard let reader = contentInfos[handle], reader.contentId == contentId else {
            throw .invalidHandle("content information")
        }
        guard allowInvalidated || !reader.invalidated else {
            throw EngineError(
                .invalidated, "the content information handle was invalidated by a service status change; close it")
        }
        return reader
    }
}
