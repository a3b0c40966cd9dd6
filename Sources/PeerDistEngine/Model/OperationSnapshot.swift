import Foundation

/// A consistent copy of an operation (the OVERLAPPED and its result) at one moment.
public struct OperationSnapshot: Sendable, Hashable {
    /// The operation id (caller-chosen or `op_…`).
    public let id: String
    /// The call that started it.
    public let kind: OperationKind
    /// The content identifier's bytes (for a client operation: its retrieval's content tag, or the
    /// flushed tag).
    public let contentId: [UInt8]
    /// What it is addressed by: its content (server operations) or its retrieval (client ones).
    public let owner: OperationOwner
    /// Its state.
    public let state: OperationState
    /// Its result: 996 `ERROR_IO_INCOMPLETE` while pending.
    public let result: Win32Error
    /// Bytes transferred (added for an append, read for a read).
    public let bytesTransferred: UInt64
    /// What the OVERLAPPED's Offset/OffsetHigh would hold: for a content-information read, where in
    /// the content information its bytes start.
    public let offset: UInt64
    /// When it was accepted.
    public let createdAt: Date
    /// When it ended; `nil` while pending.
    public let endedAt: Date?
    /// For a read that ended: the bytes it produced (the caller's buffer). `nil` otherwise and in lists.
    public let buffer: [UInt8]?
    /// A read whose buffer was released to keep its instance within
    /// `EngineLimits.maxRetainedBufferBytesPerInstance` (its result stays).
    public var bufferReleased: Bool = false

    /// `true` once it has ended.
    public var hasEnded: Bool { state != .pending }
}

/// One page of an operation list, in creation order.
public struct OperationPage: Sendable, Hashable {
    /// The operations of this page (without buffers).
    public let operations: [OperationSnapshot]
    /// Opaque token for the next page; `nil` on the last page.
    public let nextPageToken: String?
}

/// One entry of a completion port (what `GetQueuedCompletionStatusEx` returns per operation).
public struct Completion: Sendable, Hashable {
    /// Per-port, strictly increasing number, assigned when posted.
    public let sequence: UInt64
    /// The completion key bound to the handle that started the operation.
    public let key: UInt64
    /// The operation id.
    public let operation: String
    /// The operation's content identifier.
    public let contentId: [UInt8]
    /// The operation's kind.
    public let kind: OperationKind
    /// The operation's final result.
    public let result: Win32Error
    /// The operation's bytes transferred.
    public let bytesTransferred: UInt64
}
