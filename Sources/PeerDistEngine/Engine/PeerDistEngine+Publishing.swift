import PCCRC
/// Publishing (PeerDistServerPublishStream, PublishAddToStream, PublishCompleteStream,
/// CloseStreamHandle, Unpublish) and publication metadata.
extension PeerDistEngine {
    // MARK: - API

    /// Starts a publication stream (PeerDistServerPublishStream).
    /// - Parameters:
    ///   - instance: The instance handle.
    ///   - contentId: The content identifier's bytes (1 to 1,024).
    ///   - principal: The caller; publications are scoped per principal.
    ///   - contentLength: Declared length; 0 = unknown, else the bytes added must match it.
    ///   - version: 1 (V1 content information only) or 2 (V1 and V2, hashed in one pass).
    ///   - hashAlgorithm: The V1 hash (SHA-256 by default; SHA-384 and SHA-512 as in
    ///     Windows Server 2008 R2's hash generation). V2 always uses truncated SHA-512.
    ///   - port: The port its operations complete to (`default` or `port_…`).
    ///   - key: The completion key.
    /// - Returns: The stream handle (`strm_…`).
    /// - Throws: 1260, 4065, 6 (instance, port), 87 (content id, version), 4058 when that principal
    ///   has the content published, 87 marked `isTooLarge` past `maxContentLength`, 1816 past
    ///   `maxStreamsPerInstance` or `maxPublicationsPerInstance`.
    public func publishStream(
        instance: String, contentId: [UInt8], principal: String, contentLength: UInt64, version: Int,
        hashAlgorithm: V1HashAlgorithm = .sha256, port: String = "default", key: UInt64 = 0
    ) throws(EngineError) -> String {
        try locked { state throws(EngineError) in
            let record = try state.instanceForCall(instance)
            _ = try record.port(named: port)
            try Validation.contentId(contentId)
            guard version == 1 || version == 2 else {
                throw .invalidParameter("publication version must be 1 or 2")
            }
            guard state.publications[PublicationKey(principal: principal, contentId: contentId)] == nil else {
                throw EngineError(.alreadyExists, "this content is already published by this principal")
            }
            guard contentLength <= limits.maxContentLength else {
                throw .tooLarge("content longer than \(limits.maxContentLength) bytes cannot be published")
            }
            guard record.publicationCount < limits.maxPublicationsPerInstance else {
                throw .quota(
                    "the instance has \(limits.maxPublicationsPerInstance) publications",
                    retryAfterSeconds: limits.quotaRetryAfterSeconds)
            }
            guard record.streams.count < limits.maxStreamsPerInstance else {
                throw .quota(
                    "the instance has \(limits.maxStreamsPerInstance) open streams",
                    retryAfterSeconds: limits.quotaRetryAfterSeconds)
            }
            try checkQuota(.handle, of: record.principal, in: state)
            let pipeline = StreamPipeline(
                queue: hashingPool.assignQueue(), contentLength: contentLength, maxLength: limits.maxContentLength,
                version: version, hashAlgorithm: hashAlgorithm, windowBytes: limits.appendWindowBytes)
            let stream = StreamRecord(
                handle: HandleKind.stream.make(), contentId: contentId, principal: principal,
                contentLength: contentLength, version: version, portName: port, key: key, pipeline: pipeline)
            record.streams[stream.handle] = stream
            return stream.handle
        }
    }

    /// Starts an append (PeerDistServerPublishAddToStream): a pending `publishAddToStream` operation
    /// whose bytes the returned sink receives. Appends on one stream apply in the order of these calls.
    /// - Parameters:
    ///   - instance: The instance handle.
    ///   - contentId: The stream's content identifier.
    ///   - stream: The stream handle.
    ///   - operation: A caller-chosen operation id, or `nil` for an `op_…` one.
    ///   - expectedLength: The body length when known (Content-Length), else `nil`.
    /// - Returns: The sink; its `operation` is the pending operation.
    /// - Throws: 1260, 4065, 6 (instance, stream, stream of other content), 4057 (invalidated stream),
    ///   87 (operation id, negative length), 87 marked `isTooLarge` when `expectedLength` exceeds what
    ///   the stream can still take (its declared length, else `maxContentLength`, less the bytes added
    ///   and reserved by pending appends: nothing added),
    ///   4060 once the stream was completed or is completing, 4058 (id clash), 1816 (bounds).
    public func beginAppend(
        instance: String, contentId: [UInt8], stream: String, operation: String? = nil, expectedLength: Int?
    ) throws(EngineError) -> AppendSink {
        try locked { state throws(EngineError) in
            let record = try state.instanceForCall(instance)
            let streamRecord = try record.stream(stream, contentId: contentId)
            if let operation { try Validation.operationId(operation) }
            if let expectedLength, expectedLength < 0 { throw .invalidParameter("the body length must not be negative") }
            guard case .open = streamRecord.completion else {
                throw EngineError(.alreadyCompleted, "the stream has been completed")
            }
            let expected = expectedLength.map { UInt64($0) }
            if let expected {
                // Refused from the declared length alone, before any byte is read.
                let reserved = streamRecord.pendingAppends.values.reduce(streamRecord.committedBytes) { $0 + ($1 ?? 0) }
                let bound = streamRecord.contentLength > 0 ? streamRecord.contentLength : limits.maxContentLength
                let room = bound >= reserved ? bound - reserved : 0
                guard expected <= room else {
                    throw .tooLarge(
                        streamRecord.contentLength > 0
                            ? "the append would pass the declared content length \(streamRecord.contentLength): the stream can take \(room) more bytes"
                            : "content longer than \(limits.maxContentLength) bytes cannot be published: the stream can take \(room) more bytes")
                }
            }
            let op = try makeOperation(
                in: record, state: &state, kind: .publishAddToStream, contentId: contentId, handle: stream,
                portName: streamRecord.portName, key: streamRecord.key, requestedId: operation, expectedLength: expected)
            let serial = op.serial
            let pipeline = streamRecord.pipeline
            streamRecord.pendingAppends[serial] = .some(expected)
            pipeline.enqueueAppend(job: serial, expected: expected) { [weak self] end in
                self?.finishNaturally(instance: instance, serial: serial, end)
            }
            op.work = OperationWork(
                settle: { accepted in pipeline.settle(job: serial, accepted: accepted) },
                abort: { error in await pipeline.abort(job: serial, error: error) })
            return AppendSink(
                engine: self, instance: instance, serial: serial, pipeline: pipeline,
                started: StartedOperation(engine: self, record: op))
        }
    }

    /// Completes a stream (PeerDistServerPublishCompleteStream): a pending `publishCompleteStream`
    /// operation that ends after the appends before it. When it ends successfully the content is
    /// published, atomically (nothing half-published is ever visible); it fails with 4058 if the
    /// principal published the content meanwhile, or 87 if an earlier append was lost and fewer bytes
    /// than declared were added. A failed or cancelled complete may be retried.
    /// - Parameters:
    ///   - instance: The instance handle.
    ///   - contentId: The stream's content identifier.
    ///   - stream: The stream handle.
    ///   - operation: A caller-chosen operation id, or `nil`.
    /// - Returns: The pending operation (it ends on the stream's hashing worker).
    /// - Throws: 1260, 4065, 6, 4057, 87 (operation id; fewer bytes than declared), 4060 (second
    ///   complete), 4058 (id clash), 1816.
    public func completeStream(instance: String, contentId: [UInt8], stream: String, operation: String? = nil)
        throws(EngineError) -> OperationSnapshot
    {
        try startCompleteStream(instance: instance, contentId: contentId, stream: stream, operation: operation).accepted
    }

    /// `completeStream`, returning the started operation so that its state can be read later.
    /// - Throws: As `completeStream`.
    public func startCompleteStream(instance: String, contentId: [UInt8], stream: String, operation: String? = nil)
        throws(EngineError) -> StartedOperation
    {
        try locked { state throws(EngineError) in
            let record = try state.instanceForCall(instance)
            let streamRecord = try record.stream(stream, contentId: contentId)
            if let operation { try Validation.operationId(operation) }
            guard case .open = streamRecord.completion else {
                throw EngineError(.alreadyCompleted, "the stream has already been completed")
            }
            if streamRecord.contentLength > 0, !streamRecord.pendingAppends.values.contains(where: { $0 == nil }) {
                let total = streamRecord.pendingAppends.values.reduce(streamRecord.committedBytes) { $0 + ($1 ?? 0) }
                guard total >= streamRecord.contentLength else {
                    throw .invalidParameter(
                        "\(total) bytes were added, fewer than the declared \(streamRecord.contentLength)")
                }
            }
            let op = try makeOperation(
                in: record, state: &state, kind: .publishCompleteStream, contentId: contentId, handle: stream,
                portName: streamRecord.portName, key: streamRecord.key, requestedId: operation)
            let serial = op.serial
            let pipeline = streamRecord.pipeline
            streamRecord.completion = .completing(serial: serial)
            pipeline.enqueueComplete(job: serial) { [weak self] end in
                self?.finishNaturally(instance: instance, serial: serial, end)
            }
            op.work = OperationWork(
                settle: { accepted in pipeline.settle(job: serial, accepted: accepted) },
                abort: { error in await pipeline.abort(job: serial, error: error) })
            return StartedOperation(engine: self, record: op)
        }
    }

    /// Closes a stream (PeerDistServerCloseStreamHandle): its pending operations end with 995 (work
    /// stopped before this returns), its operations stay readable for `limits.retention` after they ended, the handle is invalid.
    /// Does not unpublish. Works on an invalidated stream.
    /// - Throws: 1260, 4065, 6.
    public func closeStream(instance: String, contentId: [UInt8], stream: String) async throws(EngineError) {
        let effects = try locked { state throws(EngineError) -> Effects in
            let record = try state.instanceForCall(instance)
            _ = try record.stream(stream, contentId: contentId, allowInvalidated: true)
            var effects = Effects()
            abortPending(in: record, result: .operationAborted, detail: "the stream was closed", effects: &effects) {
                $0.handle == stream
            }
            record.streams.removeValue(forKey: stream)
            return effects
        }
        await effects.runAndWait()
    }

    /// Unpublishes a content (PeerDistServerUnpublish) for `principal`: the publication is removed and
    /// the pending operations on that content in this instance end with 995 (work stopped before this
    /// returns). Open streams stay open; content-information handles on it answer 1168 to reads.
    /// - Throws: 1260, 4065, 6, 87 (content id), 1168 when it is neither published nor has pending
    ///   operations in this instance.
    public func unpublish(instance: String, contentId: [UInt8], principal: String) async throws(EngineError) {
        let effects = try locked { state throws(EngineError) -> Effects in
            let record = try state.instanceForCall(instance)
            try Validation.contentId(contentId)
            let key = PublicationKey(principal: principal, contentId: contentId)
            let published = state.publications[key] != nil
            let hasPending = record.operations(of: .content(contentId)).contains { $0.isPending }
            guard published || hasPending else {
                throw EngineError(.notFound, "this content is not published")
            }
            if let removed = state.publications.removeValue(forKey: key) {
                state.instances[removed.ownerInstance]?.publicationCount -= 1
            }
            var effects = Effects()
            abortPending(in: record, result: .operationAborted, detail: "the content was unpublished", effects: &effects) {
                $0.owner == .content(contentId)
            }
            return effects
        }
        await effects.runAndWait()
    }

    /// Publication metadata: length, versions available, publishedAt.
    /// - Throws: 1260, 4065, 6, 87 (content id), 1168 when `principal` has not published it.
    public func publication(instance: String, contentId: [UInt8], principal: String) throws(EngineError)
        -> PublicationInfo
    {
        try locked { state throws(EngineError) in
            _ = try state.instanceForCall(instance)
            try Validation.contentId(contentId)
            guard let publication = state.publications[PublicationKey(principal: principal, contentId: contentId)] else {
                throw EngineError(.notFound, "this content is not published")
            }
            return publication.info
        }
    }
}
