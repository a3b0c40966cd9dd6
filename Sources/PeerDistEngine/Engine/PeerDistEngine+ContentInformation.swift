import PCCRC

/// Content information (PeerDistServerOpenContentInformation(Ex), RetrieveContentInformation,
/// CloseContentInformation) and the whole-blob download for curl users.
extension PeerDistEngine {
    // MARK: - API

    /// Opens a reader over the content information of a range (PeerDistServerOpenContentInformationEx).
    ///
    /// The version is the highest one the publication has within `minVersion...maxVersion`. The range
    /// `(0, 0)` is the whole content; otherwise the segments it touches. Range errors: an
    /// `offset + length` that overflows is 87; a range that leaves the content (or a non-zero offset
    /// with length 0) is 4061 `PEERDIST_ERROR_OUT_OF_BOUNDS` (HTTP 416, Range Not Satisfiable).
    /// - Parameters:
    ///   - instance: The instance handle.
    ///   - contentId: The content identifier's bytes.
    ///   - principal: The caller (publications are per principal).
    ///   - offset: Range start.
    ///   - length: Range length; `(0, 0)` = whole content.
    ///   - minVersion: Lowest content information version the caller can read (1 or 2).
    ///   - maxVersion: Highest one (1 or 2).
    ///   - port: The port its reads complete to.
    ///   - key: The completion key.
    /// - Returns: The handle (`cinf_…`).
    /// - Throws: 1260, 4065, 6 (instance, port), 87 (content id, min > max, overflow), 4050 (versions
    ///   outside 1–2, or none the publication has), 1168 (not published), 4061 (range), 1816.
    public func openContentInformation(
        instance: String, contentId: [UInt8], principal: String, offset: UInt64 = 0, length: UInt64 = 0,
        minVersion: Int = 1, maxVersion: Int = 2, port: String = "default", key: UInt64 = 0
    ) throws(EngineError) -> String {
        let opened = try locked { state throws(EngineError) -> (ContentHashes, SharedContentInfoKey, String?) in
            let record = try state.instanceForCall(instance)
            _ = try record.port(named: port)
            try Validation.contentId(contentId)
            try Validation.contentInfoVersion(minVersion)
            try Validation.contentInfoVersion(maxVersion)
            guard minVersion <= maxVersion else { throw .invalidParameter("minVersion is above maxVersion") }
            guard offset.addingReportingOverflow(length).overflow == false else {
                throw .invalidParameter("offset + length overflows")
            }
            let publication = try Self.publication(in: state, principal: principal, contentId: contentId)
            guard let version = publication.hashes.versions.filter({ (minVersion...maxVersion).contains($0) }).max(),
                let hashes = publication.hashes.hashes(version: version)
            else {
                throw EngineError(
                    .contentInfoVersionUnsupported,
                    "the publication has content information versions \(publication.hashes.versions) only")
            }
            guard record.contentInfos.count < limits.maxContentInfoHandlesPerInstance else {
                throw .quota(
                    "the instance has \(limits.maxContentInfoHandlesPerInstance) open content information handles",
                    retryAfterSeconds: limits.quotaRetryAfterSeconds)
            }
            let blobKey = SharedContentInfoKey(
                principal: principal, publicationSerial: publication.serial, version: version, offset: offset, length: length)
            // Another handle reads this range already: this one shares its bytes, nothing is encoded.
            guard state.sharedContentInfo[blobKey] == nil else {
                let handle = try addReader(
                    blobKey, encoded: nil, to: record, port: port, completionKey: key, contentId: contentId, state: &state)
                return (hashes, blobKey, handle)
            }
            // A caller at its memory budget is refused before the encoding, not after.
            try checkQuota(.memory(1), of: record.principal, in: state)
            try beginEncoding(for: principal, in: &state)
            return (hashes, blobKey, nil)
        }
        if let handle = opened.2 { return handle }
        let (hashes, blobKey) = (opened.0, opened.1)
        let blob = try encoding(for: principal) { () throws(EngineError) in try encode(hashes, offset: offset, length: length) }
        return try locked { state throws(EngineError) in
            let record = try state.instanceForCall(instance)
            _ = try record.port(named: port)
            let publication = try Self.publication(in: state, principal: principal, contentId: contentId)
            guard publication.serial == blobKey.publicationSerial else {
                throw EngineError(.notFound, "the content was unpublished meanwhile")
            }
            return try addReader(
                blobKey, encoded: blob, to: record, port: port, completionKey: key, contentId: contentId, state: &state)
        }
    }

    /// Under the lock: a new content-information handle under `record` reading the content
    /// information shared under `key`, or `encoded` when none is shared yet (which then counts in
    /// the principal's memory).
    /// - Throws: 1816 (the principal's handles, its memory budget).
    private func addReader(
        _ key: SharedContentInfoKey, encoded: [UInt8]?, to record: InstanceRecord, port: String, completionKey: UInt64,
        contentId: [UInt8], state: inout EngineState
    ) throws(EngineError) -> String {
        try checkQuota(.handle, of: record.principal, in: state)
        if let encoded, state.sharedContentInfo[key] == nil {
            try checkQuota(.memory(encoded.count), of: record.principal, in: state)
        }
        guard let blob = state.shareContentInfo(key, encoded: encoded) else {
            throw EngineError(.notFound, "the content information is no longer shared")
        }
        let reader = ContentInfoRecord(
            handle: HandleKind.contentInfo.make(), contentId: contentId, principal: key.principal, version: key.version,
            portName: port, key: completionKey, publicationSerial: key.publicationSerial, blob: blob, blobKey: key)
        record.contentInfos[reader.handle] = reader
        return reader.handle
    }

    /// Reads the next bytes of the content information (PeerDistServerRetrieveContentInformation): a
    /// pending `retrieveContentInformation` operation. It ends with its bytes in `buffer` (at most
    /// `maxBytes`, further capped by `limits.maxReadBytes`: a partial read), `offset` saying where in
    /// the content information they start; at the end its result is 4053 `PEERDIST_ERROR_NO_MORE`.
    /// Without a fault delay it has ended by the time this returns.
    /// - Parameters:
    ///   - instance: The instance handle.
    ///   - contentId: The content identifier's bytes.
    ///   - contentInfo: The `cinf_…` handle.
    ///   - operation: A caller-chosen operation id, or `nil`.
    ///   - maxBytes: The caller's buffer size (at least 1).
    /// - Returns: The operation.
    /// - Throws: 1260, 4065, 6, 4057 (invalidated), 87 (operation id, `maxBytes`), 1168 (unpublished
    ///   since it was opened), 4058 (id clash), 1816.
    public func retrieveContentInformation(
        instance: String, contentId: [UInt8], contentInfo: String, operation: String? = nil, maxBytes: Int
    ) throws(EngineError) -> OperationSnapshot {
        let (snapshot, _) = try retrieve(
            instance: instance, contentId: contentId, contentInfo: contentInfo, operation: operation, maxBytes: maxBytes)
        return snapshot
    }

    /// `retrieveContentInformation`, returning the started operation so that its state can be read
    /// later.
    /// - Throws: As `retrieveContentInformation`.
    public func startRetrieveContentInformation(
        instance: String, contentId: [UInt8], contentInfo: String, operation: String? = nil, maxBytes: Int
    ) throws(EngineError) -> StartedOperation {
        try retrieve(
            instance: instance, contentId: contentId, contentInfo: contentInfo, operation: operation, maxBytes: maxBytes
        ).started
    }

    private func retrieve(
        instance: String, contentId: [UInt8], contentInfo: String, operation: String?, maxBytes: Int
    ) throws(EngineError) -> (OperationSnapshot, started: StartedOperation) {
        let (snapshot, started, effects) = try locked {
            state throws(EngineError) -> (OperationSnapshot, StartedOperation, Effects) in
            let record = try state.instanceForCall(instance)
            let reader = try record.contentInfo(contentInfo, contentId: contentId)
            if let operation { try Validation.operationId(operation) }
            guard maxBytes >= 1 else { throw .invalidParameter("maxBytes must be at least 1") }
            let publication = try Self.publication(in: state, principal: reader.principal, contentId: contentId)
            guard publication.serial == reader.publicationSerial else {
                throw EngineError(.notFound, "the content was unpublished")
            }
            let readBytes = min(maxBytes, limits.maxReadBytes, max(reader.blob.count - reader.position, 0))
            let op = try makeOperation(
                in: record, state: &state, kind: .retrieveContentInformation, contentId: contentId,
                handle: contentInfo, portName: reader.portName, key: reader.key, requestedId: operation, readBytes: readBytes)
            var effects = Effects()
            finishNaturallyLocked(
                op, in: record, .readContentInfo(maxBytes: min(maxBytes, limits.maxReadBytes)), honorDelay: true,
                state: &state, effects: &effects)
            return (op.snapshot(includeBuffer: true), StartedOperation(engine: self, record: op), effects)
        }
        effects.run()
        return (snapshot, started)
    }

    /// Closes a content-information handle (PeerDistServerCloseContentInformation): its pending reads
    /// end with 995 before this returns, its operations stay readable for `limits.retention` after they ended. Works on an
    /// invalidated handle.
    /// - Throws: 1260, 4065, 6.
    public func closeContentInformation(instance: String, contentId: [UInt8], contentInfo: String)
        async throws(EngineError)
    {
        let effects = try locked { state throws(EngineError) -> Effects in
            let record = try state.instanceForCall(instance)
            _ = try record.contentInfo(contentInfo, contentId: contentId, allowInvalidated: true)
            var effects = Effects()
            abortPending(
                in: record, result: .operationAborted, detail: "the content information handle was closed",
                effects: &effects
            ) { $0.handle == contentInfo }
            if let reader = record.contentInfos.removeValue(forKey: contentInfo) { state.releaseContentInfo(reader.blobKey) }
            return effects
        }
        await effects.runAndWait()
    }

    /// The whole content information of a publication in one piece (for curl users).
    /// - Parameters:
    ///   - instance: The instance handle.
    ///   - contentId: The content identifier's bytes.
    ///   - principal: The caller.
    ///   - version: 1 or 2.
    /// - Returns: The MS-PCCRC structure, byte-exact.
    /// - Throws: 1260, 4065, 6, 87 (content id), 4050 (version outside 1–2 or not in the publication),
    ///   1168 (not published), 1816 (the caller's memory budget is spent).
    public func contentInformation(instance: String, contentId: [UInt8], principal: String, version: Int)
        throws(EngineError) -> [UInt8]
    {
        let found = try locked { state throws(EngineError) -> (ContentHashes, [UInt8]?) in
            let record = try state.instanceForCall(instance)
            try Validation.contentId(contentId)
            try Validation.contentInfoVersion(version)
            let publication = try Self.publication(in: state, principal: principal, contentId: contentId)
            guard let hashes = publication.hashes.hashes(version: version) else {
                throw EngineError(
                    .contentInfoVersionUnsupported, "the publication has no version \(version) content information")
            }
            // The whole content information, when a handle reads it already: its bytes, not a new encoding.
            let whole = SharedContentInfoKey(
                principal: principal, publicationSerial: publication.serial, version: version, offset: 0, length: 0)
            if let shared = state.sharedContentInfo[whole] { return (hashes, shared.bytes) }
            try checkQuota(.memory(1), of: record.principal, in: state)
            try beginEncoding(for: principal, in: &state)
            return (hashes, nil)
        }
        if let shared = found.1 { return shared }
        return try encoding(for: principal) { () throws(EngineError) in try encode(found.0, offset: 0, length: 0) }
    }

    // MARK: - Private

    /// Under the lock: takes one of `principal`'s encoding slots (`maxEncodingsPerPrincipal`).
    /// - Throws: 1816 when all are taken.
    private func beginEncoding(for principal: String, in state: inout EngineState) throws(EngineError) {
        let running = state.encodingsByPrincipal[principal] ?? 0
        guard running < limits.maxEncodingsPerPrincipal else {
            throw .quota(
                "the caller has \(running) content information encodings running, its bound",
                retryAfterSeconds: limits.quotaRetryAfterSeconds)
        }
        state.encodingsByPrincipal[principal] = running + 1
    }

    /// Runs `body`, an encoding whose slot `beginEncoding` took, and gives the slot back.
    private func encoding<R>(for principal: String, _ body: () throws(EngineError) -> R) throws(EngineError) -> R {
        state.withLock { $0.encodingHook }?(principal)
        defer {
            state.withLock { state in
                let left = (state.encodingsByPrincipal[principal] ?? 1) - 1
                state.encodingsByPrincipal[principal] = left > 0 ? left : nil
            }
        }
        return try body()
    }

    private static func publication(in state: EngineState, principal: String, contentId: [UInt8])
        throws(EngineError) -> Publication
    {
        guard let publication = state.publications[PublicationKey(principal: principal, contentId: contentId)] else {
            throw EngineError(.notFound, "this content is not published")
        }
        return publication
    }

    private func encode(_ hashes: ContentHashes, offset: UInt64, length: UInt64) throws(EngineError) -> [UInt8] {
        do {
            return try ContentInformation.encode(hashes, secret: secret, offset: offset, length: length)
        } catch {
            switch error {
            case .rangeOutOfBounds:
                throw EngineError(.outOfBounds, "the range leaves the content (length \(hashes.contentLength))")
            case .versionUnsupported:
                throw EngineError(.contentInfoVersionUnsupported, "content information version not supported")
            case .cannotParse(let why):
                throw EngineError(.invalidParameter, why)
            }
        }
    }
}
