#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Logging
import Synchronization
import Transport

/// One HTTP/1.1 connection driven by bytes in process, with no socket: the real handler, core
/// and router behind a `ConnectionIO` that records what would have been written. For fuzzing
/// and for tests of the protocol without sockets. Not for concurrent use: one caller drives it.
package final class InProcessHTTP1Connection: Sendable {
    private let io: FakeConnection
    private let handler: HTTP1ConnectionHandler

    /// Creates the connection and starts it, as an accepted socket would be.
    package init(router: Router, configuration: ServerConfiguration = ServerConfiguration()) {
        var logger = Logger(label: "in-process")
        logger.logLevel = .critical
        let core = ServerCore(configuration: configuration, router: router, logger: logger,
                              errorRenderer: HTTPServer.defaultErrorRenderer, observer: nil)
        io = FakeConnection()
        handler = HTTP1ConnectionHandler(connection: io, core: core)
        let handler = handler
        io.queue.sync {
            _ = core.takeSlot()
            _ = core.connectionOpened(handler)
            handler.start()
        }
    }

    /// Bytes from the client (held back while the handler has paused reading, as a socket would).
    package func feed(_ bytes: [UInt8]) {
        io.queue.sync { io.receive(bytes) }
    }

    /// The client finished sending (EOF).
    package func finishInput() {
        io.queue.sync { io.receiveEOF() }
    }

    /// Fires the armed timer now, as if its deadline had passed.
    package func fireTimer() {
        io.queue.sync { io.fireTimer() }
    }

    /// Waits (at most `timeout`) until the handlers started have answered and nothing is queued.
    package func settle(timeout: Duration = .milliseconds(200)) {
        let deadline = ContinuousClock.now + timeout
        repeat {
            let quiet = io.queue.sync { !handler.isServing }
            if quiet { return }
            usleep(50)
        } while ContinuousClock.now < deadline
    }

    /// Closes the connection as a vanished client would (handlers waiting are cancelled).
    package func close() {
        io.queue.sync { io.close() }
    }

    /// Everything written so far.
    package var output: [UInt8] { io.queue.sync { io.written } }

    /// Whether the server closed the connection.
    package var isClosed: Bool { io.queue.sync { io.closed } }
}

/// A connection whose "kernel" takes every byte at once. Confined to `queue`.
private final class FakeConnection: ConnectionIO, @unchecked Sendable {
    let id: UInt64 = 1
    let queue = DispatchQueue(label: "peerdist.in-process")
    private weak var delegate: (any ConnectionDelegate)?
    var written: [UInt8] = []
    var closed = false
    private var closing = false
    private var paused = false
    private var eof = false
    private var held: [UInt8] = []
    private var timer: (() -> Void)?

    var isOpen: Bool { !closed && !closing }
    var totalBytesWritten: UInt64 { UInt64(written.count) }

    func start(delegate: any ConnectionDelegate) { self.delegate = delegate }

    func receive(_ bytes: [UInt8]) {
        guard !closed, !eof else { return }
        held.append(contentsOf: bytes)
        deliver()
    }

    func receiveEOF() {
        guard !closed, !eof else { return }
        eof = true
        deliver()
    }

    private func deliver() {
        while !closed, !paused, !held.isEmpty {
            let bytes = held
            held.removeAll()
            bytes.withUnsafeBytes { delegate?.connection(self, didRead: $0) }
        }
        if !closed, !paused, eof, held.isEmpty { delegate?.connectionDidReachEOF(self) }
    }

    func fireTimer() {
        let fire = timer
        timer = nil
        fire?()
    }

    func write(_ parts: [[UInt8]], completion: ((Bool) -> Void)?) {
        guard !closed else {
            completion?(false)
            return
        }
        for part in parts { written.append(contentsOf: part) }
        completion?(true)
    }

    func closeAfterFlush() {
        guard !closed else { return }
        closing = true
        close()
    }

    func close() {
        guard !closed else { return }
        closed = true
        timer = nil
        delegate?.connectionDidClose(self)
    }

    func pauseReading() { paused = true }

    func resumeReading() {
        guard paused else { return }
        paused = false
        queue.async { self.deliver() }
    }

    func setTimer(after delay: Duration, _ handler: @escaping () -> Void) {
        guard !closed else { return }
        timer = handler
    }

    func clearTimer() { timer = nil }
}
