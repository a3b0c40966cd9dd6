import BlockCache
import DequeModule

/// An open retrieval (`PEERDIST_CONTENT_HANDLE`, PeerDistClientOpenContent). Confined to the engine
/// lock.
final class RetrievalRecord {
    /// Where the retrieval is with its content information.
    enum ContentInfo {
        /// Portions are being added (`bytes` in arrival order).
        case collecting
        /// A CompleteContentInformation is pending.
        case completing(serial: UInt64)
        /// Parsed and in force.
        case complete(RetrievalLayout)
    }

    /// Bytes an AddData brought before the content information was complete, kept (bounded by
    /// `EngineLimits.maxRetrievalPendingDataBytes`) until it is.
    struct PendingData {
        let offset: UInt64
        let bytes: [UInt8]
    }

    let handle: String
    /// The content tag data added through it is labelled with (for ClientFlushContent).
    let tag: ContentTag
    let portName: String
    let key: UInt64
    var invalidated = false
    var contentInfo: ContentInfo = .collecting
    /// The content information portions, concatenated in arrival order.
    var contentInfoBytes: [UInt8] = []
    /// How many bytes it had when it completed (the bytes are dropped then).
    var contentInfoByteCount = 0
    var pendingData: [PendingData] = []
    var pendingDataBytes = 0
    /// What its completed layout takes in memory (0 before).
    var layoutBytes = 0
    /// Its memory as its instance last counted it (`InstanceRecord.recount`).
    var counted = MemoryUsage()
    /// The stream read position (PeerDistClientStreamRead).
    var streamPosition: UInt64 = 0
    /// Pending stream reads in FIFO order; only the first one is working.
    var streamReads: Deque<UInt64> = []
    /// What each pending read asked for, by serial.
    var reads: [UInt64: ReadRequest] = [:]
    /// The timeout timers of pending reads, by serial.
    var readTimers: [UInt64: any EngineTimer] = [:]

    init(handle: String, tag: ContentTag, portName: String, key: UInt64) {
        self.handle = handle
        self.tag = tag
        self.portName = portName
        self.key = key
    }

    /// Takes the data kept before the content information was complete, as `(offset, bytes)`
    /// pieces to store, and empties the keep.
    func takePendingData() -> [(UInt64, ArraySlice<UInt8>)] {
        defer {
            pendingData = []
            pendingDataBytes = 0
        }
        return pendingData.map { ($0.offset, $0.bytes[...]) }
    }

    /// What it holds in memory now.
    var memory: MemoryUsage {
        MemoryUsage(retrievalContentInformation: contentInfoBytes.count + layoutBytes, retrievalData: pendingDataBytes)
    }

    /// The layout once the content information is complete.
    var layout: RetrievalLayout? {
        if case .complete(let layout) = contentInfo { return layout }
        return nil
    }
}

/// A block or stream read as it was asked for.
struct ReadRequest: Sendable {
    enum Mode: String, Sendable {
        case block, stream
    }

    let mode: Mode
    /// The block read's offset (a stream read's is its position when it starts working).
    let offset: UInt64
    let maxBytes: Int
    /// `nil`: the local cache only (timeout 0).
    let timeout: Duration?
    /// Fired to wake or stop the read's work.
    let signal: WakeSignal
}
