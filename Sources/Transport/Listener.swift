#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CSystemShims
import Dispatch

/// A non-blocking listening socket (IPv4 or IPv6) whose accepts are driven by a Dispatch read source.
///
/// It accepts until EAGAIN on every readiness event. On EMFILE/ENFILE it suspends itself for a
/// moment instead of spinning on a level-triggered source; `pause()`/`resume()` let the owner
/// stop accepting at its connection cap.
public final class Listener: @unchecked Sendable {
    // Safety: every mutable property is touched only on `queue`.
    /// The address actually bound (numeric).
    public let boundHost: String
    /// The port actually bound (the real one when 0 was asked).
    public let boundPort: Int

    private let fd: Int32
    private let queue: DispatchQueue
    private var source: (any DispatchSourceRead)?
    private var suspended = false
    private var paused = false
    private var backingOff = false
    private var stopped = false
    private var onAccept: ((Int32) -> Void)?
    private var admit: (() -> Bool)?

    /// How long to stop accepting after EMFILE/ENFILE.
    private static let fileLimitBackoff = DispatchTimeInterval.milliseconds(50)

    /// Binds and listens.
    /// - Parameters:
    ///   - host: a numeric IPv4/IPv6 address or a host name (first address used).
    ///   - port: the port; 0 picks a free one.
    ///   - backlog: the listen backlog.
    /// - Throws: `SocketError` when the address cannot be resolved or bound.
    public init(host: String, port: Int, backlog: Int = 4_096) throws {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &result)
        guard rc == 0, let info = result else { throw SocketError(call: "getaddrinfo(\(host))", errno: EINVAL) }
        defer { freeaddrinfo(info) }
        guard let address = info.pointee.ai_addr else { throw SocketError(call: "getaddrinfo(\(host))", errno: EINVAL) }
        #if canImport(Glibc)
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        #else
        let type = SOCK_STREAM
        #endif
        let fd = socket(info.pointee.ai_family, type, 0)
        guard fd >= 0 else { throw SocketError.last("socket") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, address, info.pointee.ai_addrlen) == 0 else {
            let error = SocketError.last("bind(\(host):\(port))")
            Glibc.close(fd)
            throw error
        }
        guard listen(fd, Int32(backlog)) == 0 else {
            let error = SocketError.last("listen")
            Glibc.close(fd)
            throw error
        }
        #if !canImport(Glibc)
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        #endif
        guard let bound = SocketAddress.local(of: fd) else {
            Glibc.close(fd)
            throw SocketError.last("getsockname")
        }
        self.fd = fd
        self.boundHost = bound.host
        self.boundPort = bound.port
        self.queue = DispatchQueue(label: "peerdist.accept")
    }

    /// Starts accepting. Before each accept `admit` is asked whether a connection may be taken:
    /// when it says no, the listener pauses itself until `resume()` (the owner's connection cap),
    /// leaving new connections in the backlog. `onAccept` runs on the accept queue with each new
    /// non-blocking socket, which it then owns.
    public func start(admit: @escaping @Sendable () -> Bool = { true }, onAccept: @escaping @Sendable (Int32) -> Void) {
        queue.async { [self] in
            guard !stopped else { return } // stopped before it started: the fd is already closed
            self.onAccept = onAccept
            self.admit = admit
            let source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
            source.setEventHandler { [weak self] in self?.acceptAll() }
            source.setCancelHandler { [fd] in _ = Glibc.close(fd) }
            self.source = source
            source.resume()
        }
    }

    /// Stops accepting until `resume()` (the owner's connection cap).
    public func pause() {
        queue.async { [self] in
            paused = true
            updateSuspension()
        }
    }

    /// Accepts again after `pause()`.
    public func resume() {
        queue.async { [self] in
            paused = false
            updateSuspension()
        }
    }

    /// Stops for good and closes the listening socket.
    public func stop() {
        queue.sync {
            guard !stopped else { return }
            stopped = true
            guard let source else {
                _ = Glibc.close(fd)
                return
            }
            if suspended { source.resume() }
            suspended = false
            source.cancel()
            onAccept = nil
            admit = nil
        }
    }

    // MARK: - Private

    private func updateSuspension() {
        guard !stopped, let source else { return }
        let want = paused || backingOff
        if want && !suspended {
            source.suspend()
            suspended = true
        } else if !want && suspended {
            source.resume()
            suspended = false
        }
    }

    private func acceptAll() {
        while !stopped && !paused {
            guard admit?() ?? true else {
                paused = true
                updateSuspension()
                return
            }
            let client = peerdist_accept_nonblocking(fd, nil, nil)
            if client >= 0 {
                var one: Int32 = 1
                setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                onAccept?(client)
                continue
            }
            switch currentErrno() {
            case EINTR, ECONNABORTED:
                continue
            case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                // Out of descriptors: stop the level-triggered source for a moment instead of spinning.
                backingOff = true
                updateSuspension()
                queue.asyncAfter(deadline: .now() + Self.fileLimitBackoff) { [weak self] in
                    guard let self else { return }
                    self.backingOff = false
                    self.updateSuspension()
                }
                return
            default:
                return // EAGAIN: drained.
            }
        }
    }
}
