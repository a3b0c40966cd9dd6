import Foundation

/// One operation (the OVERLAPPED) inside the engine. Confined to the engine lock.
final class OperationRecord {
    // MARK: - Types

    /// The state machine: pending, then ended exactly once.
    enum Phase {
        case pending
        case ended(Ended)
    }

    /// How it ended.
    struct Ended {
        let state: OperationState
        let result: Win32Error
        let bytesTransferred: UInt64
        let offset: UInt64
        var buffer: [UInt8]?
        /// The buffer was released to keep the instance within its bound.
        var bufferReleased = false
        let endedAt: Date
        let endedInstant: EngineInstant
    }

    /// The final values a transition writes.
    struct Outcome {
        let state: OperationState
        let result: Win32Error
        var bytesTransferred: UInt64 = 0
        var offset: UInt64 = 0
        var buffer: [UInt8]? = nil

        static func aborted(_ result: Win32Error) -> Outcome {
            Outcome(state: result == .operationAborted ? .canceled : .failed, result: result)
        }

        static func finished(_ result: Win32Error, bytes: UInt64 = 0, offset: UInt64 = 0, buffer: [UInt8]? = nil)
            -> Outcome
        {
            Outcome(
                state: result.isSuccess ? .completed : .failed, result: result, bytesTransferred: bytes,
                offset: offset, buffer: buffer)
        }
    }

    struct Waiter {
        let continuation: CheckedContinuation<Result<OperationSnapshot, EngineError>, Never>
        let timer: (any EngineTimer)?
    }

    // MARK: - Properties

    let serial: UInt64
    let id: String
    let kind: OperationKind
    let contentId: [UInt8]
    /// The stream, content-information handle or retrieval it belongs to ("" for a flush).
    let handle: String
    /// What it is addressed by (its key in the instance's operation index): the content
    /// identifier for server operations, the retrieval for client ones.
    let owner: OperationOwner
    let portName: String
    let key: UInt64
    let createdAt: Date
    /// The fault delay: it ends no sooner than this.
    let earliestEnd: EngineInstant?
    /// Declared body length of an append, if known.
    let expectedLength: UInt64?
    /// Memory a read reserves for its buffer while pending (`makeOperation`).
    var readReservation = 0
    var phase: Phase = .pending
    var waiters: [UInt64: Waiter] = [:]
    var work: OperationWork?
    var faultTimer: (any EngineTimer)?

    // MARK: - Init

    init(
        serial: UInt64, id: String, kind: OperationKind, contentId: [UInt8], handle: String, owner: OperationOwner,
        portName: String, key: UInt64, createdAt: Date, earliestEnd: EngineInstant?, expectedLength: UInt64?
    ) {
        self.serial = serial
        self.id = id
        self.kind = kind
        self.contentId = contentId
        self.handle = handle
        self.owner = owner
        self.portName = portName
        self.key = key
        self.createdAt = createdAt
        self.earliestEnd = earliestEnd
        self.expectedLength = expectedLength
    }

    // MARK: - API

    var isPending: Bool {
        if case .pending = phase { return true }
        return false
    }

    /// The bytes of its buffer, once ended (0 without one).
    var bufferBytes: Int {
        guard case .ended(let ended) = phase else { return 0 }
        return ended.buffer?.count ?? 0
    }

    /// Drops its buffer (ended operations only); returns the bytes freed.
    func releaseBuffer() -> Int {
        guard case .ended(var ended) = phase, let buffer = ended.buffer else { return 0 }
        ended.buffer = nil
        ended.bufferReleased = true
        phase = .ended(ended)
        return buffer.count
    }

    func snapshot(includeBuffer: Bool) -> OperationSnapshot {
        switch phase {
        case .pending:
            return OperationSnapshot(
                id: id, kind: kind, contentId: contentId, owner: owner, state: .pending, result: .ioIncomplete,
                bytesTransferred: 0, offset: 0, createdAt: createdAt, endedAt: nil, buffer: nil)
        case .ended(let ended):
            return OperationSnapshot(
                id: id, kind: kind, contentId: contentId, owner: owner, state: ended.state, result: ended.result,
                bytesTransferred: ended.bytesTransferred, offset: ended.offset, createdAt: createdAt,
                endedAt: ended.endedAt, buffer: includeBuffer ? ended.buffer : nil, bufferReleased: ended.bufferReleased)
        }
    }
}

extension OperationRecord {
    /// The state now.
    var state: OperationState {
        switch phase {
        case .pending: return .pending
        case .ended(let ended): return ended.state
        }
    }
}
