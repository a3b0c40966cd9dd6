import CNGHTTP2
import HTTP2Wire
import HTTPWire

/// An HTTP/2 client made of a real nghttp2 client session, exchanging bytes in memory.
final class H2TestClient {
    struct Response {
        var status: Int?
        var headers: [(String, String)] = []
        var body: [UInt8] = []
        var ended = false
        var closedCode: UInt32?
    }

    private(set) var session: OpaquePointer?
    var responses: [Int32: Response] = [:]
    var goAway: (lastStreamID: Int32, code: UInt32)?
    var requestBodies: [Int32: (bytes: [UInt8], offset: Int)] = [:]
    /// Total DATA payload bytes the client has sent per stream.
    var sentBodyBytes: [Int32: Int] = [:]
    var windowUpdatesReceived = 0

    init(peerMaxConcurrentStreams: Int = 100, sendSettings: Bool = true, upgradeSettings: [UInt8]? = nil, manualWindow: Bool = false) {
        var callbacks: OpaquePointer?
        nghttp2_session_callbacks_new(&callbacks)
        nghttp2_session_callbacks_set_on_header_callback(callbacks) { _, frame, name, namelen, value, valuelen, _, user in
            guard let frame, let user else { return 0 }
            let client = Unmanaged<H2TestClient>.fromOpaque(user).takeUnretainedValue()
            let id = frame.pointee.hd.stream_id
            let n = String(decoding: UnsafeRawBufferPointer(start: name, count: namelen), as: UTF8.self)
            let v = String(decoding: UnsafeRawBufferPointer(start: value, count: valuelen), as: UTF8.self)
            if n == ":status" { client.responses[id, default: Response()].status = Int(v) } else { client.responses[id, default: Response()].headers.append((n, v)) }
            return 0
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) { _, _, id, data, len, user in
            guard let user else { return 0 }
            let client = Unmanaged<H2TestClient>.fromOpaque(user).takeUnretainedValue()
            client.responses[id, default: Response()].body.append(contentsOf: UnsafeRawBufferPointer(start: data, count: len))
            return 0
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, user in
            guard let frame, let user else { return 0 }
            let client = Unmanaged<H2TestClient>.fromOpaque(user).takeUnretainedValue()
            let hd = frame.pointee.hd
            if hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0, hd.stream_id != 0 {
                client.responses[hd.stream_id, default: Response()].ended = true
            }
            if hd.type == UInt8(NGHTTP2_GOAWAY.rawValue) {
                client.goAway = (frame.pointee.goaway.last_stream_id, frame.pointee.goaway.error_code)
            }
            if hd.type == UInt8(NGHTTP2_WINDOW_UPDATE.rawValue) { client.windowUpdatesReceived += 1 }
            return 0
        }
        nghttp2_session_callbacks_set_on_frame_send_callback(callbacks) { _, frame, user in
            guard let frame, let user else { return 0 }
            let client = Unmanaged<H2TestClient>.fromOpaque(user).takeUnretainedValue()
            let hd = frame.pointee.hd
            if hd.type == UInt8(NGHTTP2_DATA.rawValue) { client.sentBodyBytes[hd.stream_id, default: 0] += hd.length }
            return 0
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, id, code, user in
            guard let user else { return 0 }
            let client = Unmanaged<H2TestClient>.fromOpaque(user).takeUnretainedValue()
            client.responses[id, default: Response()].closedCode = code
            return 0
        }
        var option: OpaquePointer?
        nghttp2_option_new(&option)
        nghttp2_option_set_peer_max_concurrent_streams(option, UInt32(peerMaxConcurrentStreams))
        if manualWindow { nghttp2_option_set_no_auto_window_update(option, 1) }
        var created: OpaquePointer?
        nghttp2_session_client_new2(&created, callbacks, Unmanaged.passUnretained(self).toOpaque(), option)
        nghttp2_option_del(option)
        nghttp2_session_callbacks_del(callbacks)
        session = created
        if let upgradeSettings {
            _ = upgradeSettings.withUnsafeBufferPointer { nghttp2_session_upgrade2(created, $0.baseAddress, $0.count, 0, nil) }
        } else if sendSettings {
            nghttp2_submit_settings(created, 0, nil, 0)
        }
    }

    deinit { if let session { nghttp2_session_del(session) } }

    /// Submits a request; returns the stream id.
    @discardableResult
    func request(_ method: String = "GET", path: String = "/", authority: String? = "example.test", scheme: String = "http",
                 headers: [(String, String)] = [], body: [UInt8]? = nil) -> Int32 {
        var fields: [(String, String)] = [(":method", method), (":scheme", scheme), (":path", path)]
        if let authority { fields.append((":authority", authority)) }
        fields += headers
        return submit(fields, body: body)
    }

    /// Submits a request with exactly these fields (pseudo-headers included, in order).
    func submit(_ fields: [(String, String)], body: [UInt8]? = nil) -> Int32 {
        let storage = fields.map { (Array($0.0.utf8), Array($0.1.utf8)) }
        var nva: [nghttp2_nv] = []
        var keep: [UnsafeMutablePointer<UInt8>] = []
        defer { keep.forEach { $0.deallocate() } }
        for (name, value) in storage {
            let n = UnsafeMutablePointer<UInt8>.allocate(capacity: max(name.count, 1))
            let v = UnsafeMutablePointer<UInt8>.allocate(capacity: max(value.count, 1))
            n.initialize(from: name, count: name.count)
            v.initialize(from: value, count: value.count)
            keep += [n, v]
            nva.append(peerdist_nv(n, name.count, v, value.count))
        }
        if let body {
            var provider = peerdist_data_provider(nil) { _, id, buf, length, flags, _, user in
                guard let user, let buf, let flags else { return Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue) }
                let client = Unmanaged<H2TestClient>.fromOpaque(user).takeUnretainedValue()
                guard var entry = client.requestBodies[id] else { flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue; return 0 }
                let n = min(length, entry.bytes.count - entry.offset)
                entry.bytes.withUnsafeBufferPointer { buf.update(from: $0.baseAddress! + entry.offset, count: n) }
                entry.offset += n
                client.requestBodies[id] = entry
                if entry.offset == entry.bytes.count { flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue }
                return n
            }
            let id = nghttp2_submit_request(session, nil, nva, nva.count, &provider, nil)
            requestBodies[id] = (body, 0)
            return id
        }
        return nghttp2_submit_request(session, nil, nva, nva.count, nil, nil)
    }

    func reset(_ stream: Int32, code: UInt32 = NGHTTP2_CANCEL.rawValue) {
        nghttp2_submit_rst_stream(session, 0, stream, code)
    }

    /// Everything the client session wants to send now.
    func output() -> [UInt8] {
        var out: [UInt8] = []
        while true {
            var pointer: UnsafePointer<UInt8>?
            let n = nghttp2_session_mem_send(session, &pointer)
            guard n > 0, let pointer else { break }
            out.append(contentsOf: UnsafeBufferPointer(start: pointer, count: n))
        }
        return out
    }

    /// Feeds server bytes; returns nghttp2's result.
    @discardableResult
    func input(_ bytes: [UInt8]) -> Int {
        bytes.withUnsafeBufferPointer { nghttp2_session_mem_recv(session, $0.baseAddress, $0.count) }
    }
}

/// A server session and a client session connected in memory.
final class H2Pair {
    let server: HTTP2ServerSession
    let client: H2TestClient
    var now: ContinuousClock.Instant
    var events: [HTTP2Event] = []
    var failure: HTTP2Failure?
    /// Every byte the server produced, in order (offsets of `.responseEndWritten` index into it).
    var serverOutput: [UInt8] = []
    /// Called for each server event as it arrives, so tests can answer inside the exchange.
    var onEvent: ((HTTP2Event) -> Void)?

    init(limits: HTTP2Limits = HTTP2Limits(), client: H2TestClient = H2TestClient(), now: ContinuousClock.Instant = .now) {
        self.now = now
        self.server = HTTP2ServerSession(limits: limits, now: now)
        self.client = client
    }

    init(server: HTTP2ServerSession, client: H2TestClient, now: ContinuousClock.Instant) {
        self.now = now
        self.server = server
        self.client = client
    }

    private func note(_ new: [HTTP2Event]) {
        for event in new {
            events.append(event)
            onEvent?(event)
        }
    }

    /// Feeds raw bytes to the server as if the client sent them.
    func feed(_ bytes: [UInt8]) {
        let result = bytes.withUnsafeBytes { server.receive($0, now: now) }
        note(result.events)
        if let f = result.failure { failure = f }
    }

    /// Drains server output into the client.
    func flushServer() {
        while true {
            let out = server.takeOutput(now: now)
            note(out.events)
            serverOutput += out.bytes
            if out.bytes.isEmpty { break }
            client.input(out.bytes)
        }
    }

    /// Exchanges bytes until neither side has anything to send.
    func pump(rounds: Int = 200) {
        for _ in 0..<rounds {
            let toServer = client.output()
            if !toServer.isEmpty { feed(toServer) }
            let before = serverOutput.count
            flushServer()
            if toServer.isEmpty && serverOutput.count == before { return }
        }
    }

    func requests() -> [(stream: Int32, head: HTTP2RequestHead, endStream: Bool)] {
        events.compactMap { if case .request(let s, let h, let e) = $0 { (s, h, e) } else { nil } }
    }

    func closes() -> [Int32: HTTP2StreamCloseReason] {
        var out: [Int32: HTTP2StreamCloseReason] = [:]
        for case .streamClosed(let s, let r) in events { out[s] = r }
        return out
    }

    func endOffsets() -> [Int32: UInt64] {
        var out: [Int32: UInt64] = [:]
        for case .responseEndWritten(let s, let o) in events { out[s] = o }
        return out
    }

    func goAwaysSent() -> [HTTP2ErrorCode] {
        events.compactMap { if case .goAwaySent(_, let c) = $0 { c } else { nil } }
    }
}

/// Raw frames, for inputs a well-behaved client session would not produce.
enum RawFrame {
    static func frame(type: UInt8, flags: UInt8, stream: Int32, payload: [UInt8]) -> [UInt8] {
        let n = payload.count
        return [UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n), type, flags,
                UInt8(truncatingIfNeeded: stream >> 24), UInt8(truncatingIfNeeded: stream >> 16), UInt8(truncatingIfNeeded: stream >> 8),
                UInt8(truncatingIfNeeded: stream)] + payload
    }

    /// HPACK literal field without indexing, new name (RFC 7541 §6.2.2), for lengths below 127.
    static func literal(_ name: String, _ value: String) -> [UInt8] {
        [0x00, UInt8(name.utf8.count)] + Array(name.utf8) + [UInt8(value.utf8.count)] + Array(value.utf8)
    }

    static let clientStart: [UInt8] = HTTP2Upgrade.preface + frame(type: 4, flags: 0, stream: 0, payload: [])

    static func requestBlock(path: String = "/") -> [UInt8] {
        literal(":method", "GET") + literal(":scheme", "http") + literal(":path", path) + literal(":authority", "example.test")
    }

    /// Splits a server output into (type, flags, stream, end offset) frames.
    static func parse(_ bytes: [UInt8]) -> [(type: UInt8, flags: UInt8, stream: Int32, end: Int, payload: ArraySlice<UInt8>)] {
        var out: [(UInt8, UInt8, Int32, Int, ArraySlice<UInt8>)] = []
        var i = 0
        while i + 9 <= bytes.count {
            let length = Int(bytes[i]) << 16 | Int(bytes[i + 1]) << 8 | Int(bytes[i + 2])
            let stream = Int32(bytes[i + 5] & 0x7F) << 24 | Int32(bytes[i + 6]) << 16 | Int32(bytes[i + 7]) << 8 | Int32(bytes[i + 8])
            guard i + 9 + length <= bytes.count else { break }
            out.append((bytes[i + 3], bytes[i + 4], stream, i + 9 + length, bytes[(i + 9)..<(i + 9 + length)]))
            i += 9 + length
        }
        return out
    }

    /// The error code of the first GOAWAY frame in a server output.
    static func goAwayCode(in bytes: [UInt8]) -> UInt32? {
        for f in parse(bytes) where f.type == 7 && f.payload.count >= 8 {
            let p = Array(f.payload)
            return UInt32(p[4]) << 24 | UInt32(p[5]) << 16 | UInt32(p[6]) << 8 | UInt32(p[7])
        }
        return nil
    }
}
