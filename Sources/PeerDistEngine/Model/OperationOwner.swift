/// What an operation is addressed by, and its key in the instance's one operation index: a server
/// operation by its content identifier (PeerDistServerCancelAsyncOperation takes the content id), a
/// client one by its retrieval (PeerDistClientCancelAsyncOperation takes the content handle), a flush
/// by its instance alone.
public enum OperationOwner: Sendable, Hashable {
    /// A server operation: the content identifier's bytes.
    case content([UInt8])
    /// A client operation of a retrieval (`retr_…`).
    case retrieval(String)
    /// A client flush (PeerDistClientFlushContent), which belongs to no handle.
    case instance
}
