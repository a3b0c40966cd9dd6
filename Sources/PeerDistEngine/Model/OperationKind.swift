/// The PeerDist call that started an operation, in lower camel case without the `PeerDist` /
/// `PeerDistServer` / `PeerDistClient` prefix, as in API.md (`kind` of an operation and the names
/// `/admin/faults` takes).
public enum OperationKind: String, Sendable, Hashable, CaseIterable {
    /// `PeerDistServerPublishAddToStream`.
    case publishAddToStream
    /// `PeerDistServerPublishCompleteStream`.
    case publishCompleteStream
    /// `PeerDistServerRetrieveContentInformation`.
    case retrieveContentInformation
    /// `PeerDistClientAddContentInformation`.
    case clientAddContentInformation
    /// `PeerDistClientCompleteContentInformation`.
    case clientCompleteContentInformation
    /// `PeerDistClientAddData`.
    case clientAddData
    /// `PeerDistClientBlockRead`.
    case clientBlockRead
    /// `PeerDistClientStreamRead`.
    case clientStreamRead
    /// `PeerDistClientFlushContent`.
    case clientFlushContent
}

/// The state of an operation: `pending`, then exactly one of the three ended states.
public enum OperationState: String, Sendable, Hashable, CaseIterable {
    /// Accepted, not ended (result 996 `ERROR_IO_INCOMPLETE`).
    case pending
    /// Ended with `ERROR_SUCCESS`.
    case completed
    /// Ended with another result than success or 995 from a cancellation.
    case failed
    /// Ended by a cancellation (explicit or implicit), result 995 `ERROR_OPERATION_ABORTED`.
    case canceled
}
