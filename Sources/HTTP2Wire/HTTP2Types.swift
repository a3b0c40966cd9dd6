import HTTPWire

/// An HTTP/2 error code (RFC 9113 §7).
public struct HTTP2ErrorCode: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(_ rawValue: UInt32) { self.rawValue = rawValue }

    public static let noError = HTTP2ErrorCode(0x0)
    public static let protocolError = HTTP2ErrorCode(0x1)
    public static let internalError = HTTP2ErrorCode(0x2)
    public static let flowControlError = HTTP2ErrorCode(0x3)
    public static let settingsTimeout = HTTP2ErrorCode(0x4)
    public static let streamClosed = HTTP2ErrorCode(0x5)
    public static let frameSizeError = HTTP2ErrorCode(0x6)
    public static let refusedStream = HTTP2ErrorCode(0x7)
    public static let cancel = HTTP2ErrorCode(0x8)
    public static let compressionError = HTTP2ErrorCode(0x9)
    public static let connectError = HTTP2ErrorCode(0xA)
    public static let enhanceYourCalm = HTTP2ErrorCode(0xB)
    public static let inadequateSecurity = HTTP2ErrorCode(0xC)
    public static let http11Required = HTTP2ErrorCode(0xD)

    public var description: String {
        let names = ["NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
                     "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR",
                     "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"]
        return rawValue < UInt32(names.count) ? names[Int(rawValue)] : "0x\(String(rawValue, radix: 16))"
    }
}

/// A request head received on a stream, validated (RFC 9113 §8.3.1).
public struct HTTP2RequestHead: Sendable {
    /// `:method`.
    public var method: HTTPMethod
    /// `:path` (origin-form, or `*` for OPTIONS); for CONNECT, the `:authority` (authority-form).
    public var path: String
    /// `:scheme` (empty for CONNECT).
    public var scheme: String
    /// `:authority`, when sent.
    public var authority: String?
    /// The regular fields in order. A `host` field is added from `:authority` when the request
    /// has none; `cookie` crumbs are joined into one field (RFC 9113 §8.2.3).
    public var fields: HTTPFields

    public init(method: HTTPMethod, path: String, scheme: String, authority: String?, fields: HTTPFields) {
        self.method = method
        self.path = path
        self.scheme = scheme
        self.authority = authority
        self.fields = fields
    }
}

/// Why a stream that was reported open has closed.
public enum HTTP2StreamCloseReason: Hashable, Sendable {
    /// Both sides finished (our END_STREAM was serialised; whether the kernel took it is told by
    /// `.responseEndWritten`'s offset).
    case completed
    /// The peer sent RST_STREAM with this code: the client went away from this exchange.
    case resetByPeer(HTTP2ErrorCode)
    /// We reset it (`resetStream`, a stall, or a protocol fault found after it opened).
    case resetByUs(HTTP2ErrorCode)
    /// The connection ended (GOAWAY, a fatal error, or `connectionClosed()`) with the stream open.
    case connectionClosed(HTTP2ErrorCode)
}

/// Something the session tells the connection.
public enum HTTP2Event: Sendable {
    /// A new stream with a complete, valid request head. `endStream`: no body follows.
    case request(stream: Int32, head: HTTP2RequestHead, endStream: Bool)
    /// A stream whose head broke a limit the application answers (431 for a header list too
    /// large or too many fields). Respond with that status; its body, if any, is discarded.
    case requestRejected(stream: Int32, status: Int, reason: String)
    /// Request body bytes (one DATA frame's worth) and whether the body ends here. The bytes
    /// hold flow-control credit until `consume(stream:bytes:)` gives it back.
    case data(stream: Int32, bytes: [UInt8], endStream: Bool)
    /// A stream reported by `.request` or `.requestRejected` closed.
    case streamClosed(stream: Int32, reason: HTTP2StreamCloseReason)
    /// The frame that ends our response on this stream was serialised; its last byte is at this
    /// offset of the session's cumulative output (`outputOffset`). Commit the exchange once the
    /// kernel has taken that many bytes; if the stream or connection closes before, requeue.
    case responseEndWritten(stream: Int32, outputOffset: UInt64)
    /// The peer sent GOAWAY.
    case goAwayReceived(lastStreamID: Int32, code: HTTP2ErrorCode)
    /// We serialised a GOAWAY (graceful drain, idle, or a fatal error).
    case goAwaySent(lastStreamID: Int32, code: HTTP2ErrorCode)
}

/// Why the session stopped reading: flush `takeOutput()` (it carries the GOAWAY), then close.
public enum HTTP2Failure: Hashable, Sendable, CustomStringConvertible {
    /// nghttp2 rejected the input (bad preface, framing, flood of acknowledgements...).
    case protocolError(String)
    /// Too many RST_STREAM frames or refused streams in the window (rapid reset).
    case rapidReset
    /// A header block with too many frames or bytes (CONTINUATION flood).
    case headerBlockFlood
    /// Too many SETTINGS entries, or SETTINGS/PING frames in the window.
    case controlFrameFlood
    /// Too many empty or useless frames in the window.
    case emptyFrameFlood
    /// Our SETTINGS were not acknowledged in time.
    case settingsTimeout
    /// The peer kept the connection flow-control window closed past the stall timeout.
    case flowControlStall
    /// `connectionClosed()` was called.
    case closed

    public var description: String {
        switch self {
        case .protocolError(let message): "HTTP/2 protocol error: \(message)"
        case .rapidReset: "too many stream resets"
        case .headerBlockFlood: "header block too long (CONTINUATION flood)"
        case .controlFrameFlood: "too many SETTINGS or PING frames"
        case .emptyFrameFlood: "too many empty frames"
        case .settingsTimeout: "SETTINGS not acknowledged in time"
        case .flowControlStall: "flow-control window kept closed"
        case .closed: "connection closed"
        }
    }
}

/// What `receive` produced.
public struct HTTP2ReceiveResult: Sendable {
    /// Events, in order.
    public var events: [HTTP2Event]
    /// Set when the session will read no more: flush the output, then close.
    public var failure: HTTP2Failure?
}

/// What `takeOutput` produced.
public struct HTTP2Output: Sendable {
    /// Bytes to write, in order, after every byte returned before.
    public var bytes: [UInt8]
    /// Events raised while serialising (END_STREAM offsets, stream closes, GOAWAY sent).
    public var events: [HTTP2Event]
}

/// The response body given to `respond`.
public enum HTTP2ResponseBody: Sendable {
    /// No body: END_STREAM goes on the HEADERS frame.
    case none
    /// The whole body, known now.
    case whole([UInt8])
    /// The body comes later through `appendBody(stream:_:endStream:)` (a long-poll).
    case streaming
}

/// Why a submit call failed.
public enum HTTP2SubmitError: Error, Hashable, Sendable {
    /// No open stream with that id (it closed, was never opened, or belongs to the peer's side).
    case unknownStream
    /// `respond` was already called for this stream.
    case alreadyResponded
    /// `appendBody` on a stream that was not answered with `.streaming`, or after its end.
    case notStreaming
    /// Appending would pass `maxBufferedBodyBytesPerStream` or `maxBufferedBodyBytes`.
    case bufferFull
    /// The session is finished or failed.
    case sessionClosed
    /// nghttp2 refused the call with this error code.
    case nghttp2(Int32)
}
