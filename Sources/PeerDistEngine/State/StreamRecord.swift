/// An open publication stream. Confined to the engine lock.
final class StreamRecord {
    /// Where the stream is with `PublishCompleteStream`.
    enum Completion {
        case open
        case completing(serial: UInt64)
        case completed
    }

    let handle: String
    let contentId: [UInt8]
    let principal: String
    /// Declared length; 0 = unknown.
    let contentLength: UInt64
    let version: Int
    let portName: String
    let key: UInt64
    let pipeline: StreamPipeline
    var invalidated = false
    var completion: Completion = .open
    /// Bytes of appends that ended successfully.
    var committedBytes: UInt64 = 0
    /// Pending appends and their declared lengths (`nil` = unknown).
    var pendingAppends: [UInt64: UInt64?] = [:]

    init(
        handle: String, contentId: [UInt8], principal: String, contentLength: UInt64, version: Int,
        portName: String, key: UInt64, pipeline: StreamPipeline
    ) {
        self.handle = handle
        self.contentId = contentId
        self.principal = principal
        self.contentLength = contentLength
        self.version = version
        self.portName = portName
        self.key = key
        self.pipeline = pipeline
    }
}
