import Synchronization

/// The body of one `PublishAddToStream`: the HTTP layer feeds the request body through it as it
/// arrives. The bytes are hashed on the engine's hashing workers, never on the caller's thread, and
/// at most `EngineLimits.appendWindowBytes` (plus one chunk) wait per append: `write` suspends past
/// that, which is the backpressure to apply to the connection.
///
/// The operation is pending from `PeerDistEngine.beginAppend`; it ends once every byte was hashed
/// after `finish()` (`bytesTransferred` = bytes added), or when cancelled/aborted. Call `finish()`
/// when the body ended or `abort()` when it failed; a sink dropped without either aborts its
/// operation (995). Do not call `write` concurrently on one sink.
public final class AppendSink: Sendable {
    // MARK: - Properties

    /// The operation as it was accepted (pending).
    public var operation: OperationSnapshot { started.accepted }
    /// The operation, readable at any moment (also after its stream closed or its instance shut down).
    public let started: StartedOperation

    private let engine: PeerDistEngine
    private let instance: String
    private let serial: UInt64
    private let pipeline: StreamPipeline
    private let closed: Atomic<Bool>

    // MARK: - Init

    init(engine: PeerDistEngine, instance: String, serial: UInt64, pipeline: StreamPipeline, started: StartedOperation) {
        self.engine = engine
        self.instance = instance
        self.serial = serial
        self.pipeline = pipeline
        self.started = started
        closed = Atomic(false)
    }

    deinit {
        pipeline.release(job: serial)
        if !closed.load(ordering: .acquiring) {
            let engine = engine
            let instance = instance
            let serial = serial
            Task {
                await engine.abortOperation(
                    instance: instance, serial: serial, result: .operationAborted,
                    detail: "the append's body was abandoned")
            }
        }
    }

    // MARK: - API

    /// Hands the next body bytes to the hashing worker; suspends while the append's window is full.
    /// - Parameter bytes: The next bytes (empty is fine).
    /// - Throws: The reason the operation ended if it has (995 cancelled, 4057 invalidated, 87 bytes
    ///   past the declared length: the operation then failed with 87 and nothing was added), or 995
    ///   when the calling task is cancelled while suspended.
    public func write(_ bytes: [UInt8]) async throws(EngineError) {
        try await pipeline.write(job: serial, bytes)
    }

    /// Copies the bytes and hands them on like `write(_: [UInt8])`.
    /// - Parameter bytes: The next bytes; not used after the call returns.
    /// - Throws: As `write(_: [UInt8])`.
    public func write(_ bytes: UnsafeRawBufferPointer) async throws(EngineError) {
        try await write(Array(bytes))
    }

    /// The body ended: once hashed, the append ends (successfully, or with 87 when the body was shorter
    /// than its declared length).
    public func finish() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        pipeline.finish(job: serial)
        // No write may follow: what a later writer would be told need not be kept (nor wait for
        // this sink's deinit, which a caller that holds on to it would delay).
        pipeline.release(job: serial)
    }

    /// The body failed (for instance the client went away): the operation ends with 995 and nothing
    /// of it is added. Returns once its work has stopped. No effect after `finish()`.
    public func abort() async {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        await engine.abortOperation(
            instance: instance, serial: serial, result: .operationAborted, detail: "the append's body failed")
        pipeline.release(job: serial)
    }
}
