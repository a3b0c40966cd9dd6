#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Foundation

/// A byte-exact HTTP/1.1 test client over a blocking socket: pipelining, slow writes, half-written
/// requests and vanishing clients. Each blocking call runs on a thread of its own, never on the
/// cooperative pool or Dispatch's shared pool, so many parallel tests can neither starve the
/// server's tasks nor delay each other's sends.
public final class RawHTTPClient: @unchecked Sendable {
    // Safety: a test awaits each call before the next, so `buffer` and `fd` are used by one
    // thread at a time; `lock` orders `close()` against a call in flight.
    private var fd: Int32
    private var buffer: [UInt8] = []
    private let lock = NSLock()

    /// Errors of the client.
    public enum ClientError: Error, CustomStringConvertible {
        case connectFailed(Int32), timedOut, closedByPeer, malformed(String)
        public var description: String {
            switch self {
            case .connectFailed(let e): "connect failed (errno \(e))"
            case .timedOut: "timed out"
            case .closedByPeer: "connection closed by the server"
            case .malformed(let why): "malformed response: \(why)"
            }
        }
    }

    private init(fd: Int32) { self.fd = fd }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    /// Connects to 127.0.0.1:port and, when given, sends `initial` in the same blocking step, so
    /// that no scheduling delay of the calling test can fall between the two.
    public static func connect(port: Int, host: String = "127.0.0.1", sending initial: [UInt8] = []) async throws -> RawHTTPClient {
        try await Self.blocking {
            let fd = try connectedSocket(port: port, host: host)
            if !initial.isEmpty {
                let sent = initial.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                guard sent == initial.count else {
                    Glibc.close(fd)
                    throw ClientError.closedByPeer
                }
            }
            return RawHTTPClient(fd: fd)
        }
    }

    private static func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result { try body() }) }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    private func onIO<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await Self.blocking { [self] in
            lock.lock()
            defer { lock.unlock() }
            return try body()
        }
    }

    /// Sends bytes (all of them).
    public func send(_ bytes: [UInt8]) async throws {
        try await onIO { [self] in
            var offset = 0
            while offset < bytes.count {
                let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                guard n > 0 else { throw ClientError.closedByPeer }
                offset += n
            }
        }
    }

    /// Sends a string's UTF-8 bytes.
    public func send(_ text: String) async throws { try await send(Array(text.utf8)) }

    /// Sends bytes one at a time with a pause between them.
    public func drip(_ text: String, pause: Duration) async throws {
        for byte in text.utf8 {
            try await send([byte])
            try await Task.sleep(for: pause)
        }
    }

    /// Shuts down the sending side (the server sees EOF).
    public func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    /// Resets the connection (SO_LINGER 0, then close): the server sees ECONNRESET, as from a
    /// client that crashed with data still unsent.
    public func reset() {
        if fd >= 0 {
            var option = linger(l_onoff: 1, l_linger: 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
        }
        close()
    }

    /// Closes the socket now (a client that vanishes).
    public func close() {
        // shutdown() wakes a call blocked in poll(); the descriptor is closed under the lock.
        if fd >= 0 { shutdown(fd, Int32(SHUT_RDWR)) }
        lock.lock()
        defer { lock.unlock() }
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    /// Sends one request on this (keep-alive) connection and reads its response.
    public func request(
        _ method: String, _ path: String, json: String? = nil, body: [UInt8]? = nil,
        headers: [(String, String)] = [], timeout: Duration = TestTimeout.mustHappen
    ) async throws -> RawResponse {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        var payload: [UInt8] = []
        if let json {
            payload = Array(json.utf8)
            head += "Content-Type: application/json\r\n"
        } else if let body {
            payload = body
            head += "Content-Type: application/octet-stream\r\n"
        }
        if json != nil || body != nil || method == "POST" || method == "PUT" { head += "Content-Length: \(payload.count)\r\n" }
        try await send(Array((head + "\r\n").utf8) + payload)
        return try await readResponse(timeout: timeout, headRequest: method == "HEAD")
    }

    /// Reads one response; interim (1xx) responses are returned too unless `skipInterim`.
    public func readResponse(timeout: Duration = TestTimeout.mustHappen, skipInterim: Bool = true, headRequest: Bool = false) async throws -> RawResponse {
        try await onIO { [self] in
            let deadline = DispatchTime.now() + .nanoseconds(Int(timeout.components.seconds) * 1_000_000_000 + Int(timeout.components.attoseconds / 1_000_000_000))
            while true {
                let response = try readOne(deadline: deadline, headRequest: headRequest)
                if skipInterim && response.status < 200 { continue }
                return response
            }
        }
    }

    /// Every byte the server sends until it closes the connection (or `timeout` passes), those
    /// already read past the last response included.
    public func readToClose(timeout: Duration = TestTimeout.mustHappen) async -> [UInt8] {
        (try? await onIO { [self] in
            let deadline = DispatchTime.now() + .nanoseconds(Int(timeout.components.seconds) * 1_000_000_000 + Int(timeout.components.attoseconds / 1_000_000_000))
            while true {
                do { try fill(deadline: deadline) } catch { return buffer }
            }
        }) ?? []
    }

    /// Whether the server closed the connection within `timeout` (reads and discards data).
    public func waitForClose(timeout: Duration = TestTimeout.mustHappen) async -> Bool {
        (try? await onIO { [self] in
            let deadline = DispatchTime.now() + .nanoseconds(Int(timeout.components.seconds) * 1_000_000_000 + Int(timeout.components.attoseconds / 1_000_000_000))
            while true {
                do { try fill(deadline: deadline) } catch ClientError.closedByPeer { return true }
                buffer.removeAll()
            }
        }) ?? false
    }

    private func fill(deadline: DispatchTime) throws {
        let now = DispatchTime.now()
        guard now < deadline else { throw ClientError.timedOut }
        let remainingMs = Int32(min((deadline.uptimeNanoseconds - now.uptimeNanoseconds) / 1_000_000 + 1, 60_000))
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&pfd, 1, remainingMs)
        guard ready > 0 else { throw ClientError.timedOut }
        var chunk = [UInt8](repeating: 0, count: 65_536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { throw ClientError.closedByPeer }
        buffer.append(contentsOf: chunk[0..<n])
    }

    private func readOne(deadline: DispatchTime, headRequest: Bool) throws -> RawResponse {
        var headEnd: Int?
        while headEnd == nil {
            headEnd = findHeadEnd()
            if headEnd == nil { try fill(deadline: deadline) }
        }
        guard let end = headEnd else { throw ClientError.malformed("no head") }
        let headText = String(decoding: buffer[0..<end], as: UTF8.self)
        buffer.removeFirst(end + 4)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, let status = Int(parts[1]) else { throw ClientError.malformed(statusLine) }
        var headers: [(String, String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { throw ClientError.malformed(line) }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        var response = RawResponse(status: status, headers: headers, body: [])
        if status < 200 || status == 204 || status == 304 || headRequest { return response }
        if let length = response.header("Content-Length").flatMap(Int.init) {
            while buffer.count < length { try fill(deadline: deadline) }
            response.body = Array(buffer[0..<length])
            buffer.removeFirst(length)
        } else if response.header("Transfer-Encoding")?.lowercased() == "chunked" {
            response.body = try readChunked(deadline: deadline)
        } else {
            while true {
                do { try fill(deadline: deadline) } catch ClientError.closedByPeer { break }
            }
            response.body = buffer
            buffer.removeAll()
        }
        return response
    }

    private func readChunked(deadline: DispatchTime) throws -> [UInt8] {
        var body: [UInt8] = []
        while true {
            var lineEnd = findCRLF()
            while lineEnd == nil { try fill(deadline: deadline); lineEnd = findCRLF() }
            guard let le = lineEnd, let size = Int(String(decoding: buffer[0..<le], as: UTF8.self).split(separator: ";")[0], radix: 16) else {
                throw ClientError.malformed("chunk size")
            }
            buffer.removeFirst(le + 2)
            if size == 0 {
                while findCRLF() != 0 {
                    if let e = findCRLF() { buffer.removeFirst(e + 2) } else { try fill(deadline: deadline) }
                }
                buffer.removeFirst(2)
                return body
            }
            while buffer.count < size + 2 { try fill(deadline: deadline) }
            body.append(contentsOf: buffer[0..<size])
            buffer.removeFirst(size + 2)
        }
    }

    private func findHeadEnd() -> Int? {
        guard buffer.count >= 4 else { return nil }
        for i in 0...(buffer.count - 4) where buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 {
            return i
        }
        return nil
    }

    private func findCRLF() -> Int? {
        guard buffer.count >= 2 else { return nil }
        for i in 0...(buffer.count - 2) where buffer[i] == 13 && buffer[i + 1] == 10 { return i }
        return nil
    }
}

/// A response as the raw client read it.
public struct RawResponse: Sendable {
    /// Status code.
    public var status: Int
    /// Fields in order.
    public var headers: [(String, String)]
    /// Body bytes (de-chunked).
    public var body: [UInt8]

    /// The first value of a header, case-insensitively.
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

/// A blocking TCP socket connected to `host:port`, with TCP_NODELAY (the test clients' one way
/// to connect).
/// - Throws: `RawHTTPClient.ClientError.connectFailed` with the errno.
func connectedSocket(port: Int, host: String) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(truncatingIfNeeded: port).bigEndian)
    inet_pton(AF_INET, host, &addr.sin_addr)
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard rc == 0 else {
        let e = errno
        Glibc.close(fd)
        throw RawHTTPClient.ClientError.connectFailed(e)
    }
    var one: Int32 = 1
    setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    return fd
}
