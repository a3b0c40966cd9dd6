import CNGHTTP2
import HTTPWire

/// A sans-I/O HTTP/2 server session over libnghttp2: bytes in (`receive`), bytes out
/// (`takeOutput`), events out, and calls to answer streams. No sockets, no threads: the owner
/// confines it to one serial queue (nghttp2 sessions are not thread-safe) and drives it:
///
/// - on read: `receive(bytes)`, handle its events, then `takeOutput()` and write;
/// - on writable: `takeOutput()` until it returns no bytes or the socket is full;
/// - after any `respond`/`appendBody`/`consume`/`resetStream`/`goAway`: `takeOutput()`;
/// - on timer: `timerFired(now:)`, then `takeOutput()`; re-arm at `nextDeadline()`;
/// - close when `isFinished` and all output is written, or when `failure` is set and the
///   output is flushed; on close call `connectionClosed()` for the streams still open.
public final class HTTP2ServerSession {
    /// The bounds this session enforces.
    public let limits: HTTP2Limits
    /// Total bytes `takeOutput` has returned so far (the offsets of `.responseEndWritten`).
    public private(set) var outputOffset: UInt64 = 0
    /// Set once the session has hit a fatal error; it reads no more.
    public private(set) var failure: HTTP2Failure?

    private var session: OpaquePointer?
    private var streams: [Int32: Stream] = [:]
    private var events: [HTTP2Event] = []
    private var now: ContinuousClock.Instant
    private var resets: RateWindow
    private var controlFrames: RateWindow
    private var emptyFrames: RateWindow
    private var headerBlock: (frames: Int, bytes: Int)?
    private var settingsSentAt: ContinuousClock.Instant?
    private var idleSince: ContinuousClock.Instant?
    private var connectionStallSince: ContinuousClock.Instant?
    private var bufferedBodyBytes = 0
    private var deferredConsume: [(stream: Int32, bytes: Int)] = []
    private var deferredResets: [Int32] = []
    private var pendingEndMarks: [Int] = []  // indexes into `events` whose offsets await the mem_send length
    private var goingAway = false

    /// The per-stream state; request fields are kept only while the head is being received.
    final class Stream {
        let id: Int32
        var opened = false  // reported to the application
        var malformed = false  // reset by us before it opened
        var rejectStatus: Int?
        var rejectReason = ""
        var method: String?
        var path: String?
        var scheme: String?
        var authority: String?
        var fields: [HTTPField] = []
        var headerBytes = 0
        var headerCount = 0
        var sawRegularField = false
        var chunk: [UInt8] = []
        var unconsumed = 0
        var requestEnded = false
        var isHead = false
        var resetByPeer: UInt32?
        var resetByUs: UInt32?
        var resetByApplication = false
        var responded = false
        var streaming = false
        var bodyChunks: [[UInt8]] = []
        var bodyChunkIndex = 0
        var bodyChunkOffset = 0
        var bodyBuffered = 0  // bytes appended through appendBody and not yet serialised
        var bodyPending = 0  // all body bytes not yet serialised (whole or appended)
        var bodyEnded = false
        var deferred = false
        var endSent = false
        var stallSince: ContinuousClock.Instant?

        init(id: Int32) { self.id = id }
    }

    /// Creates a session for a connection that will start with the client preface (prior
    /// knowledge, or the preface after a 101 to `Upgrade: h2c`). Our SETTINGS are queued at once.
    public init(limits: HTTP2Limits = HTTP2Limits(), now: ContinuousClock.Instant = .now) {
        self.limits = limits
        self.now = now
        resets = RateWindow(window: limits.rateWindow, limit: limits.maxResetsPerWindow)
        controlFrames = RateWindow(window: limits.rateWindow, limit: limits.maxControlFramesPerWindow)
        emptyFrames = RateWindow(window: limits.rateWindow, limit: limits.maxEmptyFramesPerWindow)
        idleSince = now
        guard setUp() else {
            failure = .protocolError("nghttp2 session could not be created")
            return
        }
    }

    /// Creates a session from an HTTP/1.1 `Upgrade: h2c` request (RFC 7540 §3.2): `settings` is
    /// the decoded HTTP2-Settings field (`HTTP2Upgrade.settingsPayload`). The upgrade request
    /// becomes stream 1, half-closed (remote): answer it with `respond(stream: 1, ...)` after
    /// writing `HTTP2Upgrade.switchingProtocols`. Its request must have had no body.
    /// Returns nil when nghttp2 rejects the settings payload.
    public convenience init?(
        upgradeWithSettings settings: [UInt8], headRequest: Bool, limits: HTTP2Limits = HTTP2Limits(),
        now: ContinuousClock.Instant = .now
    ) {
        self.init(limits: limits, now: now)
        guard failure == nil, let session else { return nil }
        let rv = settings.withUnsafeBufferPointer { buffer in
            nghttp2_session_upgrade2(session, buffer.baseAddress, buffer.count, headRequest ? 1 : 0, nil)
        }
        guard rv == 0 else { return nil }
        let stream = Stream(id: 1)
        stream.opened = true
        stream.requestEnded = true
        stream.isHead = headRequest
        streams[1] = stream
        idleSince = nil
    }

    deinit {
        if let session { nghttp2_session_del(session) }
    }

    // MARK: - Bytes in

    /// Feeds bytes read from the connection. Returns the events they caused and, when the session
    /// will read no more, why (flush `takeOutput()`, which carries the GOAWAY, then close).
    public func receive(_ bytes: UnsafeRawBufferPointer, now: ContinuousClock.Instant = .now) -> HTTP2ReceiveResult {
        self.now = now
        guard failure == nil, let session, let base = bytes.baseAddress, bytes.count > 0 else {
            return HTTP2ReceiveResult(events: takeEvents(), failure: failure)
        }
        let rv = nghttp2_session_mem_recv(session, base.assumingMemoryBound(to: UInt8.self), bytes.count)
        if rv < 0, failure == nil {
            // nghttp2's own flood guards (acknowledgements queued, SETTINGS entries, CONTINUATIONs
            // in the security builds) give the same answer as ours.
            let code = Int32(truncatingIfNeeded: rv)
            switch code {
            case NGHTTP2_ERR_FLOODED.rawValue, NGHTTP2_ERR_TOO_MANY_SETTINGS.rawValue:
                fail(.controlFrameFlood, code: .enhanceYourCalm)
            case NGHTTP2_ERR_TOO_MANY_CONTINUATIONS.rawValue:
                fail(.headerBlockFlood, code: .enhanceYourCalm)
            default:
                fail(.protocolError(String(cString: nghttp2_strerror(code))), code: .protocolError)
            }
        }
        applyDeferred()
        return HTTP2ReceiveResult(events: takeEvents(), failure: failure)
    }

    // MARK: - Bytes out

    /// Serialises pending frames: about `limits.maxOutputPerCall` bytes at most per call. Call
    /// again while it returns bytes and the socket takes them.
    public func takeOutput(now: ContinuousClock.Instant = .now) -> HTTP2Output {
        self.now = now
        var out: [UInt8] = []
        guard let session else { return HTTP2Output(bytes: out, events: takeEvents()) }
        applyDeferred()
        while out.count < limits.maxOutputPerCall {
            var pointer: UnsafePointer<UInt8>?
            let n = nghttp2_session_mem_send(session, &pointer)
            if n > 0, let pointer {
                out.append(contentsOf: UnsafeBufferPointer(start: pointer, count: n))
                outputOffset &+= UInt64(n)
            }
            // on_frame_send ran inside this call, for a frame whose last byte was just returned.
            for index in pendingEndMarks where index < events.count {
                if case .responseEndWritten(let stream, _) = events[index] {
                    events[index] = .responseEndWritten(stream: stream, outputOffset: outputOffset)
                }
            }
            pendingEndMarks.removeAll(keepingCapacity: true)
            if n < 0 {
                if failure == nil { failure = .protocolError(String(cString: nghttp2_strerror(Int32(truncatingIfNeeded: n)))) }
                break
            }
            let more = applyDeferred()
            if n == 0 && !more { break }
        }
        updateStalls()
        return HTTP2Output(bytes: out, events: takeEvents())
    }

    /// Whether the session still reads from the peer.
    public var wantsRead: Bool {
        guard failure == nil, let session else { return false }
        return nghttp2_session_want_read(session) != 0
    }

    /// Whether `takeOutput` has something to serialise now.
    public var wantsWrite: Bool {
        guard let session else { return false }
        return nghttp2_session_want_write(session) != 0 || !deferredConsume.isEmpty || !deferredResets.isEmpty
    }

    /// Whether the session is done: no more to read and nothing more to write. Close once the
    /// output already taken is written.
    public var isFinished: Bool { !wantsRead && !wantsWrite }

    /// The ids of the streams reported open and not yet closed.
    public var openStreams: [Int32] { streams.values.filter(\.opened).map(\.id).sorted() }

    // MARK: - Answering streams

    /// Submits the response head and, unless `.streaming`, the whole body. Field names are sent
    /// lower-cased; connection-specific fields (Connection, Keep-Alive, Transfer-Encoding, ...)
    /// are dropped (RFC 9113 §8.2.2). A HEAD request's response is sent without its body.
    public func respond(stream id: Int32, status: Int, fields: HTTPFields, body: HTTP2ResponseBody) throws(HTTP2SubmitError) {
        guard let session, failure == nil else { throw .sessionClosed }
        guard let stream = streams[id], stream.opened else { throw .unknownStream }
        guard !stream.responded else { throw .alreadyResponded }
        var withProvider = true
        switch body {
        case .none:
            withProvider = false
        case .whole(let bytes):
            if bytes.isEmpty || stream.isHead {
                withProvider = false
            } else {
                stream.bodyChunks = [bytes]
                stream.bodyPending = bytes.count
                stream.bodyEnded = true
            }
        case .streaming:
            stream.streaming = true
            if stream.isHead { stream.bodyEnded = true }
        }
        var headerFields = [(name: String, value: String)]()
        headerFields.reserveCapacity(fields.count + 1)
        headerFields.append((":status", String(min(max(status, 100), 999))))
        for field in fields {
            let name = field.name.lowercased()
            if HTTP2ServerSession.connectionSpecific.contains(name) || name.hasPrefix(":") { continue }
            headerFields.append((name, field.value))
        }
        let rv = HTTP2ServerSession.withNameValues(headerFields) { nva, count in
            if withProvider {
                var provider = peerdist_data_provider(nil, HTTP2ServerSession.readBody)
                return nghttp2_submit_response(session, id, nva, count, &provider)
            }
            return nghttp2_submit_response(session, id, nva, count, nil)
        }
        guard rv == 0 else {
            stream.bodyChunks = []
            stream.bodyPending = 0
            throw .nghttp2(rv)
        }
        stream.responded = true
    }

    /// Queues more of a `.streaming` response body and resumes the stream; `endStream` ends it
    /// (bytes may be empty then). Throws `.bufferFull` past the buffered-body limits.
    public func appendBody(stream id: Int32, _ bytes: [UInt8], endStream: Bool) throws(HTTP2SubmitError) {
        guard let session, failure == nil else { throw .sessionClosed }
        guard let stream = streams[id], stream.opened else { throw .unknownStream }
        guard stream.responded, stream.streaming, !stream.bodyEnded || stream.isHead else { throw .notStreaming }
        if !stream.isHead && !bytes.isEmpty {
            guard stream.bodyBuffered + bytes.count <= limits.maxBufferedBodyBytesPerStream,
                  bufferedBodyBytes + bytes.count <= limits.maxBufferedBodyBytes
            else { throw .bufferFull }
            stream.bodyChunks.append(bytes)
            stream.bodyBuffered += bytes.count
            stream.bodyPending += bytes.count
            bufferedBodyBytes += bytes.count
        }
        if endStream { stream.bodyEnded = true }
        if stream.deferred {
            stream.deferred = false
            _ = nghttp2_session_resume_data(session, id)
        }
    }

    /// Bytes of this stream's response body given and not yet serialised.
    public func pendingBodyBytes(stream id: Int32) -> Int { streams[id]?.bodyPending ?? 0 }

    /// Gives back flow-control credit for request body bytes the application has consumed, so
    /// WINDOW_UPDATE frames go out only as fast as the handler reads.
    public func consume(stream id: Int32, bytes: Int) {
        guard bytes > 0, let session, let stream = streams[id] else { return }
        let n = min(bytes, stream.unconsumed)
        guard n > 0 else { return }
        stream.unconsumed -= n
        _ = nghttp2_session_consume(session, id, n)
    }

    /// Resets a stream (RST_STREAM), e.g. when its handler fails mid-body.
    public func resetStream(_ id: Int32, code: HTTP2ErrorCode = .cancel) {
        guard let session, let stream = streams[id] else { return }
        stream.resetByApplication = true
        _ = nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), id, code.rawValue)
    }

    /// Starts closing. Graceful: GOAWAY NO_ERROR with the last stream id processed; streams in
    /// flight finish, new ones are refused, and `isFinished` turns true once they are done.
    /// Not graceful: GOAWAY with `code` and the session ends once it is written.
    public func goAway(graceful: Bool, code: HTTP2ErrorCode = .noError) {
        guard let session, !goingAway || !graceful else { return }
        goingAway = true
        if graceful {
            let last = nghttp2_session_get_last_proc_stream_id(session)
            _ = nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), last, NGHTTP2_NO_ERROR.rawValue, nil, 0)
        } else {
            _ = nghttp2_session_terminate_session(session, code.rawValue)
        }
    }

    /// The connection is gone (socket closed, or closing after `failure`/`isFinished`): reports
    /// every stream still open as closed, and the session takes no more input.
    public func connectionClosed() -> [HTTP2Event] {
        if failure == nil { failure = .closed }
        let open = streams.values.filter(\.opened).sorted { $0.id < $1.id }
        for stream in open {
            events.append(.streamClosed(stream: stream.id, reason: .connectionClosed(.noError)))
            bufferedBodyBytes -= stream.bodyBuffered
        }
        streams.removeAll()
        return takeEvents()
    }

    // MARK: - Timers

    /// The earliest instant at which `timerFired` has something to do, if any.
    public func nextDeadline() -> ContinuousClock.Instant? {
        var deadline: ContinuousClock.Instant?
        func consider(_ instant: ContinuousClock.Instant?) {
            guard let instant else { return }
            if deadline.map({ instant < $0 }) ?? true { deadline = instant }
        }
        guard failure == nil else { return nil }
        if let settingsSentAt { consider(settingsSentAt + limits.settingsAckTimeout) }
        if let idle = limits.idleTimeout, let idleSince, !goingAway { consider(idleSince + idle) }
        if let stall = limits.flowControlStallTimeout {
            if let connectionStallSince { consider(connectionStallSince + stall) }
            for stream in streams.values { if let since = stream.stallSince { consider(since + stall) } }
        }
        return deadline
    }

    /// Acts on the deadlines that have passed: the SETTINGS-ACK timeout (fatal, GOAWAY
    /// SETTINGS_TIMEOUT), the idle timeout (graceful GOAWAY), and flow-control stalls (the stream
    /// reset, or the connection dropped). Returns the failure when the session ends.
    public func timerFired(now: ContinuousClock.Instant = .now) -> HTTP2Failure? {
        self.now = now
        guard failure == nil, let session else { return failure }
        if let settingsSentAt, now >= settingsSentAt + limits.settingsAckTimeout {
            fail(.settingsTimeout, code: .settingsTimeout)
            return failure
        }
        if let stall = limits.flowControlStallTimeout {
            if let connectionStallSince, now >= connectionStallSince + stall {
                fail(.flowControlStall, code: .noError)
                return failure
            }
            for stream in streams.values {
                if let since = stream.stallSince, now >= since + stall {
                    stream.stallSince = nil
                    stream.resetByApplication = true
                    _ = nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), stream.id, HTTP2ErrorCode.cancel.rawValue)
                }
            }
        }
        if let idle = limits.idleTimeout, let idleSince, !goingAway, now >= idleSince + idle {
            goAway(graceful: true)
        }
        return nil
    }

    // MARK: - Internals

    package var debugBufferedHeaderBytes: Int { streams.values.reduce(0) { $0 + $1.fields.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count } } }
    package var debugStreamCount: Int { streams.count }

    static let connectionSpecific: Set<String> = ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]

    private func takeEvents() -> [HTTP2Event] {
        guard !events.isEmpty else { return [] }
        let taken = events
        events.removeAll(keepingCapacity: false)
        pendingEndMarks.removeAll()
        return taken
    }

    /// Applies the window updates and resets decided inside callbacks; returns whether any did.
    @discardableResult
    private func applyDeferred() -> Bool {
        guard let session, !deferredConsume.isEmpty || !deferredResets.isEmpty else { return false }
        for (id, bytes) in deferredConsume {
            if id == 0 {
                _ = nghttp2_session_consume_connection(session, bytes)
            } else {
                _ = nghttp2_session_consume(session, id, bytes)
            }
        }
        deferredConsume.removeAll(keepingCapacity: true)
        for id in deferredResets {
            _ = nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), id, NGHTTP2_NO_ERROR.rawValue)
        }
        deferredResets.removeAll(keepingCapacity: true)
        return true
    }

    /// Marks the session failed and queues GOAWAY with `code`.
    private func fail(_ reason: HTTP2Failure, code: HTTP2ErrorCode) {
        guard failure == nil else { return }
        failure = reason
        if let session { _ = nghttp2_session_terminate_session(session, code.rawValue) }
    }

    private func updateIdle() {
        if streams.isEmpty {
            if idleSince == nil { idleSince = now }
        } else {
            idleSince = nil
        }
    }

    /// Notes the responses that wait on a closed flow-control window (after a `takeOutput`).
    private func updateStalls() {
        guard let session, limits.flowControlStallTimeout != nil, failure == nil else { return }
        var anyPending = false
        for stream in streams.values {
            guard stream.responded, !stream.endSent, stream.bodyPending > 0 else { stream.stallSince = nil; continue }
            anyPending = true
            if nghttp2_session_get_stream_remote_window_size(session, stream.id) <= 0 {
                if stream.stallSince == nil { stream.stallSince = now }
            } else {
                stream.stallSince = nil
            }
        }
        if anyPending && nghttp2_session_get_remote_window_size(session) <= 0 {
            if connectionStallSince == nil { connectionStallSince = now }
        } else {
            connectionStallSince = nil
        }
    }

    private func setUp() -> Bool {
        var callbacks: OpaquePointer?
        guard nghttp2_session_callbacks_new(&callbacks) == 0, let callbacks else { return false }
        defer { nghttp2_session_callbacks_del(callbacks) }
        nghttp2_session_callbacks_set_on_begin_frame_callback(callbacks) { _, hd, user in
            guard let hd, let user else { return 0 }
            return HTTP2ServerSession.from(user).onBeginFrame(hd.pointee)
        }
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks) { _, frame, user in
            guard let frame, let user else { return 0 }
            return HTTP2ServerSession.from(user).onBeginHeaders(frame)
        }
        nghttp2_session_callbacks_set_on_header_callback(callbacks) { _, frame, name, namelen, value, valuelen, _, user in
            guard let frame, let user else { return 0 }
            return HTTP2ServerSession.from(user).onHeader(
                frame, name: UnsafeRawBufferPointer(start: name, count: namelen), value: UnsafeRawBufferPointer(start: value, count: valuelen))
        }
        nghttp2_session_callbacks_set_on_invalid_header_callback(callbacks) { _, frame, _, _, _, _, _, user in
            guard let frame, let user else { return 0 }
            return HTTP2ServerSession.from(user).onInvalidHeader(frame)
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, user in
            guard let frame, let user else { return 0 }
            return HTTP2ServerSession.from(user).onFrameRecv(frame)
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) { _, _, streamID, data, length, user in
            guard let user else { return 0 }
            return HTTP2ServerSession.from(user).onDataChunk(streamID, UnsafeRawBufferPointer(start: data, count: length))
        }
        nghttp2_session_callbacks_set_on_frame_send_callback(callbacks) { _, frame, user in
            guard let frame, let user else { return 0 }
            return HTTP2ServerSession.from(user).onFrameSend(frame)
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, code, user in
            guard let user else { return 0 }
            return HTTP2ServerSession.from(user).onStreamClose(streamID, code)
        }

        var option: OpaquePointer?
        guard nghttp2_option_new(&option) == 0, let option else { return false }
        defer { nghttp2_option_del(option) }
        nghttp2_option_set_no_auto_window_update(option, 1)
        nghttp2_option_set_no_closed_streams(option, 1)
        nghttp2_option_set_max_outbound_ack(option, max(limits.maxOutboundAcks, 1))
        nghttp2_option_set_max_send_header_block_length(option, 65_536)

        var created: OpaquePointer?
        let user = Unmanaged.passUnretained(self).toOpaque()
        guard nghttp2_session_server_new2(&created, callbacks, user, option) == 0, let created else { return false }
        session = created

        let settings = [
            peerdist_settings_entry(Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), UInt32(clamping: limits.maxConcurrentStreams)),
            peerdist_settings_entry(Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), UInt32(clamping: min(limits.streamWindow, Int(Int32.max)))),
            peerdist_settings_entry(Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), UInt32(clamping: limits.maxHeaderListSize)),
            peerdist_settings_entry(Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), 0),
        ]
        let rv = settings.withUnsafeBufferPointer { nghttp2_submit_settings(created, UInt8(NGHTTP2_FLAG_NONE.rawValue), $0.baseAddress, $0.count) }
        guard rv == 0 else { return false }
        settingsSentAt = now
        let connectionWindow = Int32(clamping: max(limits.connectionWindow, 65_535))
        _ = nghttp2_session_set_local_window_size(created, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, connectionWindow)
        return true
    }

    private static func from(_ user: UnsafeMutableRawPointer) -> HTTP2ServerSession {
        Unmanaged<HTTP2ServerSession>.fromOpaque(user).takeUnretainedValue()
    }

    /// Calls `body` with an nghttp2_nv array pointing into one contiguous copy of the fields.
    private static func withNameValues(_ fields: [(name: String, value: String)], _ body: (UnsafePointer<nghttp2_nv>, Int) -> Int32) -> Int32 {
        var storage: [UInt8] = []
        var ranges: [(Int, Int, Int, Int)] = []
        ranges.reserveCapacity(fields.count)
        for field in fields {
            let nameStart = storage.count
            storage.append(contentsOf: field.name.utf8)
            let valueStart = storage.count
            storage.append(contentsOf: field.value.utf8)
            ranges.append((nameStart, valueStart - nameStart, valueStart, storage.count - valueStart))
        }
        storage.append(0)  // never empty, so baseAddress is not nil
        return storage.withUnsafeBufferPointer { buffer -> Int32 in
            guard let base = buffer.baseAddress else { return NGHTTP2_ERR_NOMEM.rawValue }
            let nva = ranges.map { peerdist_nv(base + $0.0, $0.1, base + $0.2, $0.3) }
            return nva.withUnsafeBufferPointer { nvaBuffer in
                guard let nvaBase = nvaBuffer.baseAddress else { return NGHTTP2_ERR_NOMEM.rawValue }
                return body(nvaBase, nvaBuffer.count)
            }
        }
    }

    // MARK: - Callbacks

    private static let callbackFailure = NGHTTP2_ERR_CALLBACK_FAILURE.rawValue

    private func onBeginFrame(_ hd: nghttp2_frame_hd) -> Int32 {
        let type = UInt32(hd.type), flags = UInt32(hd.flags)
        switch type {
        case NGHTTP2_HEADERS.rawValue:
            headerBlock = (1, hd.length)
            if flags & NGHTTP2_FLAG_END_HEADERS.rawValue != 0 { headerBlock = nil }
            if hd.length > limits.maxHeaderBlockBytes { return flood(.headerBlockFlood) }
        case NGHTTP2_CONTINUATION.rawValue:
            if let block = headerBlock {
                let next = (frames: block.frames + 1, bytes: block.bytes + hd.length)
                headerBlock = flags & NGHTTP2_FLAG_END_HEADERS.rawValue != 0 ? nil : next
                if next.frames > limits.maxHeaderBlockFrames || next.bytes > limits.maxHeaderBlockBytes {
                    return flood(.headerBlockFlood)
                }
            }
        case NGHTTP2_SETTINGS.rawValue:
            if flags & NGHTTP2_FLAG_ACK.rawValue == 0 {
                if hd.length / 6 > limits.maxSettingsEntries { return flood(.controlFrameFlood) }
                if controlFrames.record(at: now) { return flood(.controlFrameFlood) }
            }
        case NGHTTP2_PING.rawValue:
            if flags & NGHTTP2_FLAG_ACK.rawValue == 0, controlFrames.record(at: now) { return flood(.controlFrameFlood) }
        case NGHTTP2_DATA.rawValue:
            if hd.length == 0 && flags & NGHTTP2_FLAG_END_STREAM.rawValue == 0, emptyFrames.record(at: now) {
                return flood(.emptyFrameFlood)
            }
        case NGHTTP2_PRIORITY.rawValue, NGHTTP2_RST_STREAM.rawValue, NGHTTP2_GOAWAY.rawValue, NGHTTP2_WINDOW_UPDATE.rawValue,
             NGHTTP2_PUSH_PROMISE.rawValue:
            if type == NGHTTP2_PRIORITY.rawValue, emptyFrames.record(at: now) { return flood(.emptyFrameFlood) }
        default:  // unknown extension frames: ignored by nghttp2, so they only cost us
            if emptyFrames.record(at: now) { return flood(.emptyFrameFlood) }
        }
        return 0
    }

    /// A fatal flood: GOAWAY ENHANCE_YOUR_CALM and stop parsing now.
    private func flood(_ reason: HTTP2Failure) -> Int32 {
        fail(reason, code: .enhanceYourCalm)
        return HTTP2ServerSession.callbackFailure
    }

    private func onBeginHeaders(_ frame: UnsafePointer<nghttp2_frame>) -> Int32 {
        guard peerdist_frame_type(frame) == UInt8(NGHTTP2_HEADERS.rawValue),
              peerdist_frame_headers_category(frame) == Int32(NGHTTP2_HCAT_REQUEST.rawValue)
        else { return 0 }
        let id = peerdist_frame_stream_id(frame)
        streams[id] = Stream(id: id)
        updateIdle()
        return 0
    }

    private func malformed(_ stream: Stream) {
        guard let session, !stream.malformed else { return }
        stream.malformed = true
        stream.fields = []
        _ = nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), stream.id, NGHTTP2_PROTOCOL_ERROR.rawValue)
    }

    private func onInvalidHeader(_ frame: UnsafePointer<nghttp2_frame>) -> Int32 {
        // RFC 9113 §8.2.1: a field nghttp2 finds invalid makes the request malformed.
        if let stream = streams[peerdist_frame_stream_id(frame)], !stream.opened { malformed(stream) }
        return 0
    }

    private func onHeader(_ frame: UnsafePointer<nghttp2_frame>, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Int32 {
        guard peerdist_frame_type(frame) == UInt8(NGHTTP2_HEADERS.rawValue),
              let stream = streams[peerdist_frame_stream_id(frame)], !stream.malformed
        else { return 0 }
        if stream.opened { return 0 }  // trailers: counted by the header-block bounds, not kept
        stream.headerBytes += name.count + value.count + 32
        stream.headerCount += 1
        if stream.rejectStatus != nil { return 0 }
        if stream.headerBytes > limits.maxHeaderListSize || stream.headerCount > limits.maxHeaderCount {
            stream.rejectStatus = 431
            stream.rejectReason = stream.headerCount > limits.maxHeaderCount ? "too many header fields" : "header list too large"
            stream.fields = []
            // Pseudo-headers are kept: they are small and bounded, and the answer may need them.
            return 0
        }
        let nameString = String(decoding: name, as: UTF8.self)
        let valueString = String(decoding: value, as: UTF8.self)
        if name.first == UInt8(ascii: ":") {
            guard !stream.sawRegularField else { malformed(stream); return 0 }
            switch nameString {
            case ":method" where stream.method == nil: stream.method = valueString
            case ":path" where stream.path == nil: stream.path = valueString
            case ":scheme" where stream.scheme == nil: stream.scheme = valueString
            case ":authority" where stream.authority == nil: stream.authority = valueString
            default: malformed(stream)  // duplicate, unknown, or response pseudo-header
            }
            return 0
        }
        stream.sawRegularField = true
        if HTTP2ServerSession.connectionSpecific.contains(nameString) || (nameString == "te" && valueString != "trailers") {
            malformed(stream)  // RFC 9113 §8.2.2
            return 0
        }
        if nameString == "cookie", let index = stream.fields.firstIndex(where: { $0.name == "cookie" }) {
            stream.fields[index].value += "; " + valueString
        } else {
            stream.fields.append(HTTPField(name: nameString, value: valueString))
        }
        return 0
    }

    private func onFrameRecv(_ frame: UnsafePointer<nghttp2_frame>) -> Int32 {
        let type = UInt32(peerdist_frame_type(frame)), flags = UInt32(peerdist_frame_flags(frame))
        let id = peerdist_frame_stream_id(frame)
        let endStream = flags & NGHTTP2_FLAG_END_STREAM.rawValue != 0
        switch type {
        case NGHTTP2_HEADERS.rawValue:
            guard let stream = streams[id], !stream.malformed else { return 0 }
            if stream.opened {
                if endStream { finishRequest(stream) }  // trailers
                return 0
            }
            openRequest(stream, endStream: endStream)
        case NGHTTP2_DATA.rawValue:
            guard let stream = streams[id], stream.opened else { return 0 }
            let bytes = stream.chunk
            stream.chunk = []
            if stream.rejectStatus != nil {
                if endStream { stream.requestEnded = true }
                return 0
            }
            if !bytes.isEmpty || endStream {
                if endStream { stream.requestEnded = true }
                events.append(.data(stream: id, bytes: bytes, endStream: endStream))
            }
        case NGHTTP2_RST_STREAM.rawValue:
            if let stream = streams[id] { stream.resetByPeer = peerdist_frame_rst_error_code(frame) }
            if resets.record(at: now) { return flood(.rapidReset) }
        case NGHTTP2_SETTINGS.rawValue:
            if flags & NGHTTP2_FLAG_ACK.rawValue != 0 { settingsSentAt = nil }
        case NGHTTP2_GOAWAY.rawValue:
            events.append(.goAwayReceived(lastStreamID: peerdist_frame_goaway_last_stream_id(frame),
                                          code: HTTP2ErrorCode(peerdist_frame_goaway_error_code(frame))))
        case NGHTTP2_WINDOW_UPDATE.rawValue:
            if id == 0 { connectionStallSince = nil } else { streams[id]?.stallSince = nil }
        default:
            break
        }
        return 0
    }

    private func finishRequest(_ stream: Stream) {
        guard !stream.requestEnded else { return }
        stream.requestEnded = true
        if stream.rejectStatus == nil { events.append(.data(stream: stream.id, bytes: [], endStream: true)) }
    }

    /// Validates a complete request head (RFC 9113 §8.3.1) and reports the stream.
    private func openRequest(_ stream: Stream, endStream: Bool) {
        stream.requestEnded = endStream
        if let status = stream.rejectStatus {
            stream.opened = true
            stream.isHead = stream.method == "HEAD"
            events.append(.requestRejected(stream: stream.id, status: status, reason: stream.rejectReason))
            return
        }
        guard let method = stream.method, !method.isEmpty else { return malformed(stream) }
        var fields = stream.fields
        stream.fields = []
        let path: String
        let scheme: String
        if method == "CONNECT" {
            guard let authority = stream.authority, stream.path == nil, stream.scheme == nil else { return malformed(stream) }
            path = authority
            scheme = ""
        } else {
            guard let p = stream.path, !p.isEmpty, let s = stream.scheme, !s.isEmpty else { return malformed(stream) }
            guard p.utf8.first == UInt8(ascii: "/") || (p == "*" && method == "OPTIONS") else { return malformed(stream) }
            path = p
            scheme = s
        }
        let hosts = fields.filter { $0.name == "host" }
        if let authority = stream.authority {
            guard HostSyntax.isValid(authority), !authority.isEmpty || method != "CONNECT" else { return malformed(stream) }
            if hosts.isEmpty {
                fields.append(HTTPField(name: "host", value: authority))
            } else if hosts.count > 1 || !hosts[0].value.asciiCaseInsensitiveEquals(authority) {
                return malformed(stream)  // RFC 9113 §8.3.1: Host must match :authority
            }
        } else {
            guard hosts.count == 1, HostSyntax.isValid(hosts[0].value) else { return malformed(stream) }
        }
        stream.opened = true
        stream.isHead = method == "HEAD"
        let head = HTTP2RequestHead(method: HTTPMethod(method), path: path, scheme: scheme, authority: stream.authority, fields: HTTPFields(fields))
        events.append(.request(stream: stream.id, head: head, endStream: endStream))
    }

    private func onDataChunk(_ id: Int32, _ data: UnsafeRawBufferPointer) -> Int32 {
        guard data.count > 0 else { return 0 }
        if let stream = streams[id], stream.opened, stream.rejectStatus == nil, !stream.resetByApplication {
            stream.chunk.append(contentsOf: data)
            stream.unconsumed += data.count
        } else {
            deferredConsume.append((id, data.count))  // nobody will read it: give the credit back now
        }
        return 0
    }

    private func onFrameSend(_ frame: UnsafePointer<nghttp2_frame>) -> Int32 {
        let type = UInt32(peerdist_frame_type(frame)), flags = UInt32(peerdist_frame_flags(frame))
        let id = peerdist_frame_stream_id(frame)
        switch type {
        case NGHTTP2_HEADERS.rawValue, NGHTTP2_DATA.rawValue:
            guard flags & NGHTTP2_FLAG_END_STREAM.rawValue != 0, let stream = streams[id] else { return 0 }
            stream.endSent = true
            stream.stallSince = nil
            if stream.opened {
                pendingEndMarks.append(events.count)
                events.append(.responseEndWritten(stream: id, outputOffset: 0))
            }
            if !stream.requestEnded && stream.resetByPeer == nil {
                deferredResets.append(id)  // RFC 9113 §8.1: the answer is complete, stop sending the body
            }
        case NGHTTP2_RST_STREAM.rawValue:
            let code = peerdist_frame_rst_error_code(frame)
            let stream = streams[id]
            stream?.resetByUs = code
            let byApplication = stream?.resetByApplication ?? false
            if code != NGHTTP2_NO_ERROR.rawValue && !byApplication && failure == nil && resets.record(at: now) {
                fail(.rapidReset, code: .enhanceYourCalm)
            }
        case NGHTTP2_GOAWAY.rawValue:
            events.append(.goAwaySent(lastStreamID: peerdist_frame_goaway_last_stream_id(frame),
                                      code: HTTP2ErrorCode(peerdist_frame_goaway_error_code(frame))))
        default:
            break
        }
        return 0
    }

    private func onStreamClose(_ id: Int32, _ code: UInt32) -> Int32 {
        guard let stream = streams.removeValue(forKey: id) else { return 0 }
        if stream.unconsumed > 0 { deferredConsume.append((0, stream.unconsumed)) }
        bufferedBodyBytes -= stream.bodyBuffered
        updateIdle()
        guard stream.opened else { return 0 }
        let reason: HTTP2StreamCloseReason
        if let peer = stream.resetByPeer {
            reason = .resetByPeer(HTTP2ErrorCode(peer))
        } else if stream.endSent && (code == NGHTTP2_NO_ERROR.rawValue || stream.resetByUs == NGHTTP2_NO_ERROR.rawValue) {
            reason = .completed
        } else if let ours = stream.resetByUs {
            reason = .resetByUs(HTTP2ErrorCode(ours))
        } else {
            reason = .connectionClosed(HTTP2ErrorCode(code))
        }
        events.append(.streamClosed(stream: id, reason: reason))
        return 0
    }

    /// The data source read callback: copies the stream's pending body into nghttp2's frame.
    private static let readBody: nghttp2_data_source_read_callback = { _, streamID, buffer, length, flags, _, user in
        guard let user, let buffer, let flags else { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
        return HTTP2ServerSession.from(user).readBody(streamID, into: buffer, length, flags)
    }

    private func readBody(_ id: Int32, into buffer: UnsafeMutablePointer<UInt8>, _ length: Int, _ flags: UnsafeMutablePointer<UInt32>) -> Int {
        guard let stream = streams[id] else { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
        var written = 0
        while written < length, stream.bodyChunkIndex < stream.bodyChunks.count {
            let chunk = stream.bodyChunks[stream.bodyChunkIndex]
            let n = min(length - written, chunk.count - stream.bodyChunkOffset)
            chunk.withUnsafeBufferPointer { source in
                if let base = source.baseAddress {
                    (buffer + written).update(from: base + stream.bodyChunkOffset, count: n)
                }
            }
            written += n
            stream.bodyChunkOffset += n
            if stream.bodyChunkOffset == chunk.count {
                stream.bodyChunks[stream.bodyChunkIndex] = []
                stream.bodyChunkIndex += 1
                stream.bodyChunkOffset = 0
            }
        }
        if stream.bodyChunkIndex == stream.bodyChunks.count {
            stream.bodyChunks.removeAll(keepingCapacity: false)
            stream.bodyChunkIndex = 0
        }
        stream.bodyPending -= written
        if stream.streaming {
            let released = min(written, stream.bodyBuffered)
            stream.bodyBuffered -= released
            bufferedBodyBytes -= released
        }
        if stream.bodyPending == 0 {
            if stream.bodyEnded {
                flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            } else if written == 0 {
                stream.deferred = true
                return Int(NGHTTP2_ERR_DEFERRED.rawValue)
            }
        }
        return written
    }
}
