/// How an operation's own work says it ended (as opposed to an abort by cancellation, close,
/// unpublish, shutdown or invalidation). The engine turns it into the final result under its lock,
/// at the moment of the transition, and only if the operation is still pending.
enum NaturalEnd: Sendable {
    /// An append hashed all its bytes.
    case appended(bytes: UInt64)
    /// A complete finalized the digests; publishing happens in the transition.
    case streamCompleted(PublishedHashes)
    /// The work failed with this result.
    case failed(Win32Error)
    /// A content-information read: its bytes are taken from the handle's position in the transition.
    case readContentInfo(maxBytes: Int)
    /// A client operation's final values, computed by its work.
    case outcome(OperationRecord.Outcome)
    /// A CompleteContentInformation parsed: the layout comes into force in the transition.
    case retrievalCompleted(RetrievalLayout, contentInfoBytes: UInt64)
}

/// The hooks an operation's in-progress work gives the engine. Exactly one of them is called, once,
/// by whichever end won the operation's transition.
struct OperationWork: Sendable {
    /// The natural end won; `accepted` is `true` when it ended with success.
    let settle: @Sendable (_ accepted: Bool) -> Void
    /// An abort won; returns once the work has stopped. The error is what the work's feeder
    /// (an `AppendSink` writer) is told.
    let abort: @Sendable (_ error: EngineError) async -> Void
}
