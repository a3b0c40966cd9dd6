#if canImport(Glibc)
import Glibc
#endif
import CNGHTTP2
import CZlib
import Foundation

/// One stream's answer as `H2Client` received it.
public struct H2Response: Sendable {
    /// The stream.
    public var stream: Int32
    /// `:status`, once the response head arrived.
    public var status: Int?
    /// Regular fields in order (names lowercase, as HTTP/2 sends them).
    public var headers: [(String, String)] = []
    /// DATA payload bytes.
    public var body: [UInt8] = []
    /// Whether END_STREAM arrived.
    public var ended = false
    /// The error code of a RST_STREAM the server sent for it.
    public var resetCode: UInt32?
    /// Whether the stream is closed (ended both ways, reset, or lost with the connection).
    public var closed = false

    /// The first value of a field, case-insensitively.
    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    /// The body as UTF-8 text.
    public var text: String { String(decoding: body, as: UTF8.self) }

    /// The body parsed as a JSON object (empty when it is not one).
    public var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:]
    }
}

/// An HTTP/2 test client over a real socket (cleartext, prior knowledge), made of an nghttp2
/// client session: many concurrent streams, request bodies under flow control, RST_STREAM,
/// GOAWAY, and raw frames for inputs a well-behaved client never sends. Every wait has a
/// deadline. Blocking socket work runs on a thread of its own, never on the cooperative pool.
public final class H2Client: @unchecked Sendable {
    // Safety: every property is touched under `lock` (recursive: conditions given to `pump` may
    // read the client's state from inside the loop).
    private let lock = NSRecursiveLock()
    private var fd: Int32
    private var session: OpaquePointer?
    private var outbox: [UInt8] = []
    private var outboxOffset = 0
    private var responses: [Int32: H2Response] = [:]
    private var requestBodies: [Int32: (bytes: [UInt8], offset: Int, stall: Bool)] = [:]
    private var settingsReceived = false
    private var pingAcks = 0
    private var _goAway: (lastStreamID: Int32, code: UInt32)?
    private var _peerClosed = false
    /// A send failed (the server closed or reset): nothing more is sent, reading goes on to the end.
    private var sendFailed = false
    private var _sessionError: Int?
    /// Bytes received from the server in total.
    private var _bytesReceived = 0

    /// Errors of the client.
    public enum ClientError: Error, CustomStringConvertible {
        case connectFailed(Int32), timedOut(String), closedByPeer, sessionFailed(Int)
        public var description: String {
            switch self {
            case .connectFailed(let e): "connect failed (errno \(e))"
            case .timedOut(let what): "timed out waiting for \(what)"
            case .closedByPeer: "connection closed by the server"
            case .sessionFailed(let code): "nghttp2 session failed (\(code))"
            }
        }
    }

    private init(fd: Int32) { self.fd = fd }

    deinit {
        if let session { nghttp2_session_del(session) }
        if fd >= 0 { Glibc.close(fd) }
    }

    /// Connects to 127.0.0.1:port, sends the client preface and SETTINGS (a large receive
    /// window, so answers never wait on this client's credit), and waits for the server's
    /// SETTINGS, so that its concurrency limit is known before the first request.
    public static func connect(port: Int, host: String = "127.0.0.1", receiveWindow: Int32 = 1 << 24,
                               timeout: Duration = TestTimeout.mustHappen) async throws -> H2Client {
        let client = try await blocking { () throws -> H2Client in
            let fd = try connectedSocket(port: port, host: host)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            return H2Client(fd: fd)
        }
        client.makeSession(receiveWindow: receiveWindow)
        try await client.pump(timeout: timeout, "the server's SETTINGS") { $0.settingsReceived }
        // Our acknowledgement goes out now, not with the first request: a test that opens a
        // client and uses it later must not see it dropped at the server's SETTINGS timeout.
        try await client.pump(timeout: timeout, "the SETTINGS acknowledgement to be sent") { $0.unsentBytes == 0 }
        return client
    }

    private static func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result { try body() }) }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    // MARK: - Session

    private func makeSession(receiveWindow: Int32) {
        locked {
            var callbacks: OpaquePointer?
            nghttp2_session_callbacks_new(&callbacks)
            nghttp2_session_callbacks_set_on_header_callback(callbacks) { _, frame, name, namelen, value, valuelen, _, user in
                guard let frame, let user else { return 0 }
                let client = Unmanaged<H2Client>.fromOpaque(user).takeUnretainedValue()
                let id = frame.pointee.hd.stream_id
                let n = String(decoding: UnsafeRawBufferPointer(start: name, count: namelen), as: UTF8.self)
                let v = String(decoding: UnsafeRawBufferPointer(start: value, count: valuelen), as: UTF8.self)
                if n == ":status" {
                    client.responses[id, default: H2Response(stream: id)].status = Int(v)
                } else {
                    client.responses[id, default: H2Response(stream: id)].headers.append((n, v))
                }
                return 0
            }
            nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) { _, _, id, data, len, user in
                guard let user, let data else { return 0 }
                let client = Unmanaged<H2Client>.fromOpaque(user).takeUnretainedValue()
                client.responses[id, default: H2Response(stream: id)].body.append(contentsOf: UnsafeBufferPointer(start: data, count: len))
                return 0
            }
            nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, user in
                guard let frame, let user else { return 0 }
                let client = Unmanaged<H2Client>.fromOpaque(user).takeUnretainedValue()
                let hd = frame.pointee.hd
                if hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0, hd.stream_id != 0,
                   hd.type == UInt8(NGHTTP2_DATA.rawValue) || hd.type == UInt8(NGHTTP2_HEADERS.rawValue) {
                    client.responses[hd.stream_id, default: H2Response(stream: hd.stream_id)].ended = true
                }
                switch hd.type {
                case UInt8(NGHTTP2_GOAWAY.rawValue):
                    client._goAway = (frame.pointee.goaway.last_stream_id, frame.pointee.goaway.error_code)
                case UInt8(NGHTTP2_RST_STREAM.rawValue):
                    client.responses[hd.stream_id, default: H2Response(stream: hd.stream_id)].resetCode = frame.pointee.rst_stream.error_code
                case UInt8(NGHTTP2_SETTINGS.rawValue) where hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0:
                    client.settingsReceived = true
                case UInt8(NGHTTP2_PING.rawValue) where hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) != 0:
                    client.pingAcks += 1
                default:
                    break
                }
                return 0
            }
            nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, id, _, user in
                guard let user else { return 0 }
                let client = Unmanaged<H2Client>.fromOpaque(user).takeUnretainedValue()
                client.responses[id, default: H2Response(stream: id)].closed = true
                client.requestBodies[id] = nil
                return 0
            }
            var created: OpaquePointer?
            nghttp2_session_client_new(&created, callbacks, Unmanaged.passUnretained(self).toOpaque())
            nghttp2_session_callbacks_del(callbacks)
            session = created
            var settings = [peerdist_settings_entry(Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), UInt32(receiveWindow)),
                            peerdist_settings_entry(Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), 0)]
            nghttp2_submit_settings(created, 0, &settings, settings.count)
            nghttp2_session_set_local_window_size(created, 0, 0, receiveWindow)
            drainSession()
        }
    }

    /// Moves everything the session wants to send now into the outbox (no socket I/O).
    private func drainSession() {
        guard let session else { return }
        while true {
            var pointer: UnsafePointer<UInt8>?
            let n = nghttp2_session_mem_send(session, &pointer)
            if n < 0 { _sessionError = n; return }
            guard n > 0, let pointer else { return }
            outbox.append(contentsOf: UnsafeBufferPointer(start: pointer, count: n))
        }
    }

    // MARK: - Requests

    /// Submits a request (its HEADERS are queued at once, ahead of anything submitted later);
    /// returns the stream id, or a negative nghttp2 error. With `declaredLength`, that is the
    /// content-length sent and, once `body` is sent (as the server's credit allows), the stream
    /// stalls: no more DATA, no END_STREAM (a client that stops halfway).
    @discardableResult
    public func submit(_ method: String, _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil,
                       declaredLength: Int? = nil, authority: String = "127.0.0.1") -> Int32 {
        locked {
            var fields: [(String, String)] = [(":method", method), (":scheme", "http"), (":path", path), (":authority", authority)]
            fields += headers
            if let body { fields.append(("content-length", "\(declaredLength ?? body.count)")) }
            let storage = fields.map { (Array($0.0.utf8), Array($0.1.utf8)) }
            var keep: [UnsafeMutablePointer<UInt8>] = []
            defer { keep.forEach { $0.deallocate() } }
            var nva: [nghttp2_nv] = []
            for (name, value) in storage {
                let n = UnsafeMutablePointer<UInt8>.allocate(capacity: max(name.count, 1))
                let v = UnsafeMutablePointer<UInt8>.allocate(capacity: max(value.count, 1))
                n.initialize(from: name, count: name.count)
                v.initialize(from: value, count: value.count)
                keep += [n, v]
                nva.append(peerdist_nv(n, name.count, v, value.count))
            }
            let id: Int32
            if let body {
                var provider = peerdist_data_provider(nil) { _, id, buf, length, flags, _, user in
                    guard let user, let buf, let flags else { return Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue) }
                    let client = Unmanaged<H2Client>.fromOpaque(user).takeUnretainedValue()
                    guard var entry = client.requestBodies[id] else {
                        flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
                        return 0
                    }
                    let n = min(length, entry.bytes.count - entry.offset)
                    if n > 0 { entry.bytes.withUnsafeBufferPointer { buf.update(from: $0.baseAddress! + entry.offset, count: n) } }
                    entry.offset += n
                    client.requestBodies[id] = entry
                    if entry.offset == entry.bytes.count, entry.stall {
                        return n > 0 ? n : Int(NGHTTP2_ERR_DEFERRED.rawValue)
                    }
                    if entry.offset == entry.bytes.count {
                        flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
                        client.requestBodies[id] = nil
                    }
                    return n
                }
                id = nghttp2_submit_request(session, nil, nva, nva.count, &provider, nil)
                if id > 0 { requestBodies[id] = (body, 0, declaredLength != nil) }
            } else {
                id = nghttp2_submit_request(session, nil, nva, nva.count, nil, nil)
            }
            if id > 0 { responses[id] = H2Response(stream: id) }
            drainSession()
            return id
        }
    }

    /// Submits a request and waits for its whole answer.
    public func request(_ method: String, _ path: String, json: String? = nil, body: [UInt8]? = nil,
                        headers: [(String, String)] = [], timeout: Duration = TestTimeout.mustHappen) async throws -> H2Response {
        var headers = headers
        var payload = body
        if let json {
            payload = Array(json.utf8)
            if !headers.contains(where: { $0.0.lowercased() == "content-type" }) { headers.append(("content-type", "application/json")) }
        } else if body != nil, !headers.contains(where: { $0.0.lowercased() == "content-type" }) {
            headers.append(("content-type", "application/octet-stream"))
        }
        let id = submit(method, path, headers: headers, body: payload)
        guard id > 0 else { throw ClientError.sessionFailed(Int(id)) }
        return try await wait(for: [id], timeout: timeout)[0]
    }

    /// Waits until every one of `ids` is closed; returns their answers in that order.
    public func wait(for ids: [Int32], timeout: Duration = TestTimeout.mustHappen) async throws -> [H2Response] {
        try await pump(timeout: timeout, "\(ids.count) stream(s) to close") { client in
            ids.allSatisfy { client.responses[$0]?.closed == true }
        }
        return locked { ids.map { responses[$0] ?? H2Response(stream: $0) } }
    }

    /// Sends RST_STREAM (CANCEL by default) for a stream.
    public func reset(_ stream: Int32, code: UInt32 = NGHTTP2_CANCEL.rawValue) {
        locked {
            nghttp2_submit_rst_stream(session, 0, stream, code)
            drainSession()
        }
    }

    /// Queues bytes as they are, after what the session queued so far (frames a well-behaved
    /// client never sends).
    public func sendRaw(_ bytes: [UInt8]) {
        locked {
            drainSession()
            outbox.append(contentsOf: bytes)
        }
    }

    /// Sends a PING and waits for its acknowledgement: the server has read everything sent before.
    public func ping(timeout: Duration = TestTimeout.mustHappen) async throws {
        let target = locked { () -> Int in
            nghttp2_submit_ping(session, 0, nil)
            drainSession()
            return pingAcks + 1
        }
        try await pump(timeout: timeout, "a PING acknowledgement") { $0.pingAcks >= target }
    }

    /// The answer of a stream so far.
    public func response(_ stream: Int32) -> H2Response? { locked { responses[stream] } }

    /// Whether a stream is closed.
    public func isClosed(_ stream: Int32) -> Bool { locked { responses[stream]?.closed == true } }

    /// The GOAWAY the server sent, if any.
    public var goAway: (lastStreamID: Int32, code: UInt32)? { locked { _goAway } }

    /// Whether the server closed the connection.
    public var peerClosed: Bool { locked { _peerClosed } }

    /// Bytes the client has queued and the kernel has not taken yet (a flood's unsent rest).
    public var unsentBytes: Int { locked { outbox.count - outboxOffset } }

    /// Waits for a GOAWAY from the server.
    public func waitForGoAway(timeout: Duration = TestTimeout.mustHappen) async throws -> (lastStreamID: Int32, code: UInt32) {
        try await pump(timeout: timeout, "GOAWAY", allowClose: true) { $0._goAway != nil }
        guard let goAway else { throw ClientError.closedByPeer }
        return goAway
    }

    /// Whether the server closes the connection within `timeout`.
    public func waitForClose(timeout: Duration = TestTimeout.mustHappen) async -> Bool {
        (try? await pump(timeout: timeout, "close", allowClose: true) { $0._peerClosed }) != nil && peerClosed
    }

    /// Closes the socket.
    public func close() {
        locked {
            if fd >= 0 { Glibc.close(fd) }
            fd = -1
            _peerClosed = true
        }
    }

    // MARK: - The loop

    /// Sends and receives until `condition` holds (checked under the lock, between socket
    /// events and at least every 10 ms), or throws when `timeout` passes or the server closes.
    public func pump(timeout: Duration = TestTimeout.mustHappen, _ what: String = "a condition", allowClose: Bool = false,
                     until condition: @escaping @Sendable (H2Client) -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        try await Self.blocking { [self] in
            try locked {
                while true {
                    if condition(self) { return }
                    if let e = _sessionError { throw ClientError.sessionFailed(e) }
                    if _peerClosed {
                        if allowClose { return }
                        throw ClientError.closedByPeer
                    }
                    let now = ContinuousClock.now
                    guard now < deadline else { throw ClientError.timedOut(what) }
                    drainSession()
                    let remaining = deadline - now
                    let waitMs = Int32(min(10, max(1, remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000)))
                    var pfd = pollfd(fd: fd, events: Int16(POLLIN) | (outboxOffset < outbox.count && !sendFailed ? Int16(POLLOUT) : 0), revents: 0)
                    // Poll without the lock so that submit/reset from other threads get in.
                    lock.unlock()
                    let ready = poll(&pfd, 1, waitMs)
                    lock.lock()
                    guard ready > 0, fd >= 0 else { continue }
                    if pfd.revents & Int16(POLLOUT) != 0 { sendSome() }
                    if pfd.revents & (Int16(POLLIN) | Int16(POLLHUP) | Int16(POLLERR)) != 0 { receiveSome() }
                }
            }
        }
    }

    private func sendSome() {
        while outboxOffset < outbox.count {
            let n = outbox[outboxOffset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            if n > 0 {
                outboxOffset += n
                continue
            }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) { break }
            sendFailed = true  // EPIPE, ECONNRESET: what the server sent before is still to be read
            return
        }
        if outboxOffset == outbox.count {
            outbox.removeAll(keepingCapacity: true)
            outboxOffset = 0
        } else if outboxOffset > 1 << 20 {
            outbox.removeFirst(outboxOffset)
            outboxOffset = 0
        }
    }

    private func receiveSome() {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n > 0 {
                _bytesReceived += n
                let rv = chunk.withUnsafeBufferPointer { nghttp2_session_mem_recv(session, $0.baseAddress, n) }
                if rv < 0 { _sessionError = rv; return }
                drainSession()
                continue
            }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) { return }
            // EOF or reset: streams still open are lost with the connection.
            _peerClosed = true
            for (id, r) in responses where !r.closed { responses[id]?.closed = true }
            return
        }
    }
}

/// Raw HTTP/2 frames and HPACK literals, for floods and malformed input.
public enum H2Frame {
    /// One frame: 9-byte header and payload.
    public static func frame(type: UInt8, flags: UInt8, stream: Int32, payload: [UInt8]) -> [UInt8] {
        let n = payload.count
        return [UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n), type, flags,
                UInt8(truncatingIfNeeded: stream >> 24), UInt8(truncatingIfNeeded: stream >> 16), UInt8(truncatingIfNeeded: stream >> 8),
                UInt8(truncatingIfNeeded: stream)] + payload
    }

    /// HPACK literal field without indexing, new name (RFC 7541 §6.2.2), for lengths below 127.
    public static func literal(_ name: String, _ value: String) -> [UInt8] {
        [0x00, UInt8(name.utf8.count)] + Array(name.utf8) + [UInt8(value.utf8.count)] + Array(value.utf8)
    }

    /// A GET request's header block for `path`.
    public static func requestBlock(path: String = "/") -> [UInt8] {
        literal(":method", "GET") + literal(":scheme", "http") + literal(":path", path) + literal(":authority", "127.0.0.1")
    }
}

/// gzip of `count` zero bytes, compressed as it goes (never holding the plain bytes): about
/// 1 KiB per MiB, so a 1 GiB bomb is about 1 MiB.
public func gzipOfZeros(count: Int) -> [UInt8] {
    let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    stream.initialize(to: z_stream())
    defer { stream.deallocate() }
    guard peerdist_deflate_init_gzip(stream, 9) == Z_OK else { return [] }
    defer { deflateEnd(stream) }
    let zeros = [UInt8](repeating: 0, count: 1 << 20)
    var out = [UInt8](repeating: 0, count: 1 << 16)
    var result: [UInt8] = []
    var left = count
    zeros.withUnsafeBytes { input in
        while true {
            let n = min(left, input.count)
            left -= n
            stream.pointee.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
            stream.pointee.avail_in = uInt(n)
            let flush = left == 0 ? Z_FINISH : Z_NO_FLUSH
            var status = Z_OK
            repeat {
                out.withUnsafeMutableBytes { o in
                    stream.pointee.next_out = o.bindMemory(to: Bytef.self).baseAddress
                    stream.pointee.avail_out = uInt(o.count)
                    status = deflate(stream, flush)
                    result.append(contentsOf: o[0..<(o.count - Int(stream.pointee.avail_out))])
                }
            } while stream.pointee.avail_out == 0 || (flush == Z_FINISH && status != Z_STREAM_END)
            if left == 0 { return }
        }
    }
    return result
}
