/// The bounds one HTTP/2 connection enforces. Every count, byte total and rate a peer controls is
/// capped here; each limit says what happens past it.
public struct HTTP2Limits: Sendable {
    /// SETTINGS_MAX_CONCURRENT_STREAMS: open streams at once. Streams opened beyond it before the
    /// peer acknowledged our SETTINGS are refused (RST_STREAM REFUSED_STREAM); after the
    /// acknowledgement nghttp2 treats an excess as a protocol error.
    public var maxConcurrentStreams: Int
    /// SETTINGS_MAX_HEADER_LIST_SIZE, enforced on receive: the sum over the request's fields of
    /// name + value + 32 octets (RFC 9113 §6.5.2). Beyond: the stream is reported as
    /// `.requestRejected(status: 431)` and nothing more of its head is kept.
    public var maxHeaderListSize: Int
    /// Most fields (pseudo-headers included) in one request head. Beyond: 431, as above.
    public var maxHeaderCount: Int
    /// Most frames (HEADERS plus CONTINUATIONs) in one header block. Beyond: GOAWAY
    /// ENHANCE_YOUR_CALM and the connection is dropped (the CONTINUATION flood). Debian's
    /// libnghttp2 1.52 security build also stops at 8 CONTINUATIONs on its own (same answer),
    /// so values above 9 do not raise the bound there.
    public var maxHeaderBlockFrames: Int
    /// Most compressed bytes in one header block (over all its frames). Beyond: as above.
    public var maxHeaderBlockBytes: Int
    /// Most SETTINGS entries in one SETTINGS frame. Beyond: GOAWAY ENHANCE_YOUR_CALM.
    public var maxSettingsEntries: Int
    /// The sliding window in which resets, control frames and empty frames are counted.
    public var rateWindow: Duration
    /// RST_STREAM frames received plus streams we refused or reset for a protocol fault, per
    /// `rateWindow` (rapid reset, CVE-2023-44487). Beyond: GOAWAY ENHANCE_YOUR_CALM.
    public var maxResetsPerWindow: Int
    /// SETTINGS and PING frames (not acknowledgements) received per `rateWindow`. Beyond: GOAWAY
    /// ENHANCE_YOUR_CALM.
    public var maxControlFramesPerWindow: Int
    /// Frames that carry nothing (DATA of length 0 without END_STREAM, PRIORITY, unknown types)
    /// received per `rateWindow`. Beyond: GOAWAY ENHANCE_YOUR_CALM.
    public var maxEmptyFramesPerWindow: Int
    /// Acknowledgements (SETTINGS ACK, PING ACK) nghttp2 may queue for a peer that does not read.
    /// Beyond: the connection is dropped (nghttp2_option_set_max_outbound_ack).
    public var maxOutboundAcks: Int
    /// SETTINGS_INITIAL_WINDOW_SIZE: request-body bytes a stream may have received and not yet
    /// consumed. This bounds the per-stream request buffering (a client that sends before it
    /// has seen our SETTINGS may use the protocol's initial 65,535 instead).
    public var streamWindow: Int
    /// The connection flow-control window: request-body bytes all streams together may have
    /// received and not yet consumed. This bounds the per-connection request buffering.
    public var connectionWindow: Int
    /// Response body bytes queued by `appendBody` and not yet serialised, per stream. Beyond,
    /// `appendBody` throws `.bufferFull`.
    public var maxBufferedBodyBytesPerStream: Int
    /// Response body bytes queued by `appendBody` over all streams. Beyond, as above.
    public var maxBufferedBodyBytes: Int
    /// Roughly how many bytes one `takeOutput` call returns at most (it can exceed this by one
    /// frame, at most 16 KiB plus a header block).
    public var maxOutputPerCall: Int
    /// How long the peer has to acknowledge our SETTINGS. Beyond: GOAWAY SETTINGS_TIMEOUT.
    public var settingsAckTimeout: Duration
    /// With no stream open for this long, the session sends a graceful GOAWAY and finishes.
    /// `nil` turns it off; the server passes its configured idle timeout.
    public var idleTimeout: Duration?
    /// A response that cannot progress because the peer keeps its flow-control window closed:
    /// past this, the stream is reset (CANCEL), or the connection dropped when it is the
    /// connection window. `nil` turns it off; the server passes its configured write timeout.
    public var flowControlStallTimeout: Duration?

    /// Creates limits; the defaults suit an API server.
    public init(
        maxConcurrentStreams: Int = 256,
        maxHeaderListSize: Int = 16_384,
        maxHeaderCount: Int = 100,
        maxHeaderBlockFrames: Int = 8,
        maxHeaderBlockBytes: Int = 65_536,
        maxSettingsEntries: Int = 32,
        rateWindow: Duration = .seconds(10),
        maxResetsPerWindow: Int = 200,
        maxControlFramesPerWindow: Int = 200,
        maxEmptyFramesPerWindow: Int = 1_000,
        maxOutboundAcks: Int = 1_000,
        streamWindow: Int = 262_144,
        connectionWindow: Int = 1_048_576,
        maxBufferedBodyBytesPerStream: Int = 1_048_576,
        maxBufferedBodyBytes: Int = 8_388_608,
        maxOutputPerCall: Int = 65_536,
        settingsAckTimeout: Duration = .seconds(10),
        idleTimeout: Duration? = nil,
        flowControlStallTimeout: Duration? = nil
    ) {
        self.maxConcurrentStreams = maxConcurrentStreams
        self.maxHeaderListSize = maxHeaderListSize
        self.maxHeaderCount = maxHeaderCount
        self.maxHeaderBlockFrames = maxHeaderBlockFrames
        self.maxHeaderBlockBytes = maxHeaderBlockBytes
        self.maxSettingsEntries = maxSettingsEntries
        self.rateWindow = rateWindow
        self.maxResetsPerWindow = maxResetsPerWindow
        self.maxControlFramesPerWindow = maxControlFramesPerWindow
        self.maxEmptyFramesPerWindow = maxEmptyFramesPerWindow
        self.maxOutboundAcks = maxOutboundAcks
        self.streamWindow = streamWindow
        self.connectionWindow = connectionWindow
        self.maxBufferedBodyBytesPerStream = maxBufferedBodyBytesPerStream
        self.maxBufferedBodyBytes = maxBufferedBodyBytes
        self.maxOutputPerCall = maxOutputPerCall
        self.settingsAckTimeout = settingsAckTimeout
        self.idleTimeout = idleTimeout
        self.flowControlStallTimeout = flowControlStallTimeout
    }
}
