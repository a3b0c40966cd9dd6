/// Limits the HTTP/1.1 parser enforces, each with the status it answers.
public struct HTTP1Limits: Sendable {
    /// Largest request head (request line + fields + blank line) in bytes. Beyond: 431.
    public var maxHeadBytes: Int
    /// Most header fields in one head. Beyond: 431.
    public var maxHeaderCount: Int
    /// Longest request-target in bytes. Beyond: 414.
    public var maxTargetLength: Int
    /// Largest trailer section of a chunked body in bytes. Beyond: 431.
    public var maxTrailerBytes: Int

    /// Creates limits; the defaults suit an API server.
    public init(maxHeadBytes: Int = 16_384, maxHeaderCount: Int = 100, maxTargetLength: Int = 8_192, maxTrailerBytes: Int = 4_096) {
        self.maxHeadBytes = maxHeadBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxTargetLength = maxTargetLength
        self.maxTrailerBytes = maxTrailerBytes
    }
}
