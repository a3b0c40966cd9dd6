/// An operation as the call that started it holds it: its state can be read at any moment, also
/// after its handle was closed or its instance shut down, so that the answer of the starting call
/// can say how things stand when it is written (API.md, Conventions: 202 only while pending).
public final class StartedOperation: @unchecked Sendable {
    // @unchecked: `record` is confined to the engine lock and only read under it.
    private let engine: PeerDistEngine
    private let record: OperationRecord
    /// The operation as it was accepted (pending, or already ended for a read served at once).
    public let accepted: OperationSnapshot

    /// Work the starting call must run itself, in its own task, before it answers: set only when
    /// the call asked for it and the work ends in a bounded time without waiting for anything (a
    /// read of the local cache only, by a caller that waits). Until it has run the operation stays
    /// pending; cancels and closes work on it as on any other.
    public let work: (@Sendable () async -> Void)?

    /// The engine-wide serial of the operation.
    let serial: UInt64

    init(engine: PeerDistEngine, record: OperationRecord, work: (@Sendable () async -> Void)? = nil) {
        serial = record.serial
        self.engine = engine
        self.record = record
        self.work = work
        accepted = record.snapshot(includeBuffer: false)
    }

    /// The operation now, without its buffer.
    public var current: OperationSnapshot {
        engine.state.withLock { _ in record.snapshot(includeBuffer: false) }
    }
}
