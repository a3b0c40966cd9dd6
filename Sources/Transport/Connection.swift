#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CSystemShims
import Dispatch

/// What a connection tells its protocol handler. Every call arrives on the connection's worker queue.
public protocol ConnectionDelegate: AnyObject {
    /// Bytes arrived. They are only valid during the call: copy what is not consumed.
    func connection(_ connection: any ConnectionIO, didRead bytes: UnsafeRawBufferPointer)
    /// The peer closed its sending side (or reset). Reading has stopped.
    func connectionDidReachEOF(_ connection: any ConnectionIO)
    /// The outbound queue went above the high watermark (`false`) or back below the low one (`true`).
    func connection(_ connection: any ConnectionIO, writabilityChanged writable: Bool)
    /// The socket is closed; nothing more will be called.
    func connectionDidClose(_ connection: any ConnectionIO)
}

/// What a protocol handler may ask of its connection: the seam between a protocol and the
/// sockets, so that a protocol can also be driven by bytes in process (tests, fuzzing).
/// Every call comes from `queue`.
public protocol ConnectionIO: AnyObject, Sendable {
    /// An id unique in the process, for logs.
    var id: UInt64 { get }
    /// The serial queue every call comes from and every delegate call arrives on.
    var queue: DispatchQueue { get }
    /// Whether the connection is open and not on its way to closing.
    var isOpen: Bool { get }
    /// Bytes the kernel has accepted since the connection opened.
    var totalBytesWritten: UInt64 { get }
    /// The peer's numeric address without its port; nil when unknown (in-process connections).
    var peerAddress: String? { get }
    /// Starts reading.
    func start(delegate: any ConnectionDelegate)
    /// Queues bytes; `completion` runs once they are all sent (true) or the connection closed (false).
    func write(_ parts: [[UInt8]], completion: ((Bool) -> Void)?)
    /// Closes once everything queued has been sent.
    func closeAfterFlush()
    /// Closes now.
    func close()
    /// Stops delivering reads; a peer that finishes sending or resets is still noticed.
    func pauseReading()
    /// Delivers reads again.
    func resumeReading()
    /// Runs `handler` after `delay` unless re-armed or cleared first (one timer per connection).
    func setTimer(after delay: Duration, _ handler: @escaping () -> Void)
    /// Clears the timer.
    func clearTimer()
}

extension ConnectionIO {
    public var peerAddress: String? { nil }

    /// Queues bytes with no completion.
    public func write(_ parts: [[UInt8]]) { write(parts, completion: nil) }
}

/// One accepted TCP connection: a non-blocking socket in its worker's epoll, driven on that
/// worker's serial queue. Confined to that queue: call every method from it.
///
/// Reads land in the worker's scratch buffer. Writes are queued and sent with `sendmsg` (vectored,
/// MSG_NOSIGNAL); each write may carry a completion that runs once its last byte has been accepted
/// by the kernel, or with `false` when the connection closed first. Watermarks report
/// backpressure. Write readiness is asked for only while bytes wait; a socket with no interest
/// leaves the epoll.
public final class Connection: ConnectionIO, @unchecked Sendable {
    // Safety: all mutable state is confined to `worker.queue` (serial).

    /// An id unique in the process, for logs.
    public let id: UInt64
    /// The worker whose queue drives this connection.
    public let worker: WorkerPool.Worker
    /// The queue every call must come from.
    public var queue: DispatchQueue { worker.queue }

    private let fd: Int32
    private weak var delegate: (any ConnectionDelegate)?
    private var interest = EventLoop.Interest(read: false, write: false)
    private var timer: (any DispatchSourceTimer)?
    private var timerHandler: (() -> Void)?
    /// When the armed handler is due; nil = no timer armed.
    private var timerDeadline: DispatchTime?
    /// When the Dispatch timer will fire; nil = it will not (fired, or never scheduled).
    private var timerScheduledAt: DispatchTime?
    private var readSuspended = false
    private var readEOF = false
    /// The peer has finished sending (FIN seen while reading was paused): what it sent is read
    /// regardless of the pause, since no more can come, until EOF.
    private var peerFinished = false
    private var state = State.open

    private var outbound: [[UInt8]] = []
    private var outboundHeadOffset = 0
    private var bytesQueued: UInt64 = 0
    private var bytesWritten: UInt64 = 0
    private var completions: [(upTo: UInt64, callback: (Bool) -> Void)] = []
    private var writable = true
    private var closeWhenFlushed = false
    /// Closing gracefully: the sending side is shut and the peer's leftovers are discarded.
    private var lingering = false
    private var lingerBudget = 0

    /// Bytes read and discarded at most while lingering before closing.
    public var lingerBytes = 1_048_576
    /// How long lingering lasts at most.
    public var lingerTime: Duration = .seconds(2)

    /// Outbound bytes above which the connection reports itself unwritable.
    public var highWatermark = 65_536
    /// Outbound bytes below which it reports itself writable again.
    public var lowWatermark = 32_768
    /// Most reads per readiness event, so one busy client cannot starve the others on its worker.
    private static let readsPerEvent = 4

    private enum State { case open, closing, closed }

    /// Wraps an accepted non-blocking socket.
    public init(fd: Int32, id: UInt64, worker: WorkerPool.Worker) {
        self.fd = fd
        self.id = id
        self.worker = worker
    }

    /// Whether the connection is open and not on its way to closing.
    public var isOpen: Bool { state == .open && !closeWhenFlushed }

    /// The peer's numeric address without its port, looked up on first use.
    public var peerAddress: String? {
        if let cachedPeerAddress { return cachedPeerAddress }
        cachedPeerAddress = SocketAddress.peer(of: fd)
        return cachedPeerAddress
    }
    private var cachedPeerAddress: String?

    /// Bytes queued but not yet accepted by the kernel.
    public var bufferedBytes: Int { Int(bytesQueued - bytesWritten) }

    /// Bytes the kernel has accepted since the connection opened (to tell a stalled writer from
    /// a slow one).
    public var totalBytesWritten: UInt64 { bytesWritten }

    /// Starts reading. Call once, on the queue.
    public func start(delegate: any ConnectionDelegate) {
        self.delegate = delegate
        setInterest(read: true, write: interest.write)
    }

    private func setInterest(read: Bool, write: Bool) {
        // While reading is paused, a peer that finishes sending or resets is still watched for
        // (EPOLLRDHUP; errors and hang-ups are always reported), so that a paused upload whose
        // client vanished does not wait forever.
        let watchHangup = !read && readSuspended && !readEOF && !peerFinished && state == .open && !lingering
        let new = EventLoop.Interest(read: read, write: write, hangup: watchHangup)
        worker.loop.update(self, fd: fd, from: interest, to: new)
        interest = new
    }

    /// Readiness reported by the worker's epoll.
    func handle(events: UInt32) {
        let failed = events & UInt32(PEERDIST_EV_ERROR | PEERDIST_EV_HANGUP) != 0
        if interest.write && (events & UInt32(PEERDIST_EV_WRITE) != 0 || failed) { flush() }
        let readable = events & UInt32(PEERDIST_EV_READ | PEERDIST_EV_READ_HANGUP) != 0
        if state == .open && interest.read && (readable || failed) {
            readAvailable()
        } else if state == .open && interest.hangup && (readable || failed) {
            // Paused, and the peer is done: read what it sent (bounded by the kernel's receive
            // buffer, since nothing more can come) up to EOF or the reset.
            peerFinished = true
            readSuspended = false
            setInterest(read: true, write: interest.write)
            readAvailable()
        }
    }

    // MARK: - Reading

    /// Stops delivering reads (input backpressure). EOF is not seen while paused.
    public func pauseReading() {
        guard !readSuspended, state == .open, !lingering, !peerFinished else { return }
        readSuspended = true
        setInterest(read: false, write: interest.write)
    }

    /// Delivers reads again after `pauseReading()`.
    public func resumeReading() {
        guard readSuspended, state == .open, !readEOF, !lingering else { return }
        readSuspended = false
        setInterest(read: true, write: interest.write)
    }

    private func readAvailable() {
        let scratch = worker.scratch
        for _ in 0..<Self.readsPerEvent {
            guard state == .open, !readSuspended else { return }
            let n = Glibc.read(fd, scratch.baseAddress, scratch.count)
            if n > 0 && lingering {
                lingerBudget -= n
                if lingerBudget <= 0 { close() }
                continue
            } else if n > 0 {
                delegate?.connection(self, didRead: UnsafeRawBufferPointer(rebasing: scratch[0..<n]))
                if n < scratch.count { return }
            } else if n == 0 {
                reachedEOF()
                return
            } else {
                switch currentErrno() {
                case EAGAIN, EWOULDBLOCK, EINTR:
                    return
                default:
                    reachedEOF()
                    return
                }
            }
        }
    }

    private func reachedEOF() {
        if lingering {
            close()
            return
        }
        guard !readEOF else { return }
        readEOF = true
        // A level-triggered source fires forever at EOF: stop it.
        readSuspended = true
        setInterest(read: false, write: interest.write)
        delegate?.connectionDidReachEOF(self)
    }

    // MARK: - Writing

    /// Queues bytes and tries to send them at once.
    /// - Parameters:
    ///   - parts: buffers sent in order, as one vectored write where possible.
    ///   - completion: runs with `true` once the last byte was handed to the kernel, `false` if the
    ///     connection closed first.
    public func write(_ parts: [[UInt8]], completion: ((Bool) -> Void)?) {
        guard state == .open else {
            completion?(false)
            return
        }
        for part in parts where !part.isEmpty {
            outbound.append(part)
            bytesQueued += UInt64(part.count)
        }
        if let completion { completions.append((bytesQueued, completion)) }
        if outbound.isEmpty {
            fireCompletions() // nothing to send: an empty write is done once those before it are
        } else {
            flush()
        }
    }

    /// Closes once everything queued has been sent, lingering first: the sending side is shut
    /// down and whatever the peer still sends is read and thrown away (up to `lingerBytes`, for
    /// up to `lingerTime`), so that unread input does not make the kernel answer with a reset
    /// that destroys the response before the client reads it (RFC 9112 §9.6).
    public func closeAfterFlush() {
        guard state == .open else { return }
        closeWhenFlushed = true
        if outbound.isEmpty { linger() }
    }

    private func linger() {
        guard state == .open, !lingering else { return }
        lingering = true
        _ = shutdown(fd, Int32(SHUT_WR))
        if readEOF {
            close()
            return
        }
        lingerBudget = lingerBytes
        readSuspended = false
        setInterest(read: true, write: false)
        armTimer(after: lingerTime) { [weak self] in self?.close() }
    }

    private func flush() {
        while !outbound.isEmpty && state != .closed {
            let sent = sendSome()
            if sent < 0 {
                switch currentErrno() {
                case EAGAIN, EWOULDBLOCK:
                    armWriteSource()
                    updateWritability()
                    return
                case EINTR:
                    continue
                default:
                    close()
                    return
                }
            }
            consume(sent)
        }
        disarmWriteSource()
        updateWritability()
        if closeWhenFlushed && outbound.isEmpty { linger() }
    }

    /// One `sendmsg` over up to 64 queued buffers; returns the byte count or -1.
    private func sendSome() -> Int {
        let count = min(outbound.count, 64)
        return withUnsafeTemporaryAllocation(of: iovec.self, capacity: count) { iov -> Int in
            // Pin every buffer for the duration of the call.
            func gather(_ index: Int) -> Int {
                if index == count {
                    var msg = msghdr()
                    msg.msg_iov = iov.baseAddress
                    msg.msg_iovlen = numericCast(count)
                    return sendmsg(fd, &msg, Int32(MSG_NOSIGNAL))
                }
                return outbound[index].withUnsafeBytes { raw -> Int in
                    let skip = index == 0 ? outboundHeadOffset : 0
                    iov[index] = iovec(iov_base: UnsafeMutableRawPointer(mutating: raw.baseAddress.map { $0 + skip }), iov_len: raw.count - skip)
                    return gather(index + 1)
                }
            }
            return gather(0)
        }
    }

    private func consume(_ sent: Int) {
        var left = sent
        bytesWritten += UInt64(sent)
        while left > 0, let first = outbound.first {
            let available = first.count - outboundHeadOffset
            if left >= available {
                left -= available
                outbound.removeFirst()
                outboundHeadOffset = 0
            } else {
                outboundHeadOffset += left
                left = 0
            }
        }
        fireCompletions()
    }

    /// Runs, in order, the completions whose bytes the kernel has all taken.
    private func fireCompletions() {
        var fired = 0
        while fired < completions.count, completions[fired].upTo <= bytesWritten { fired += 1 }
        if fired > 0 {
            let done = completions[0..<fired]
            completions.removeFirst(fired)
            for entry in done { entry.callback(true) }
        }
    }

    private func armWriteSource() {
        if !interest.write { setInterest(read: interest.read, write: true) }
    }

    private func disarmWriteSource() {
        if interest.write && state == .open { setInterest(read: interest.read, write: false) }
    }

    private func updateWritability() {
        let buffered = bufferedBytes
        if writable && buffered > highWatermark {
            writable = false
            delegate?.connection(self, writabilityChanged: false)
        } else if !writable && buffered < lowWatermark {
            writable = true
            delegate?.connection(self, writabilityChanged: true)
        }
    }

    // MARK: - Timer

    /// Runs `handler` on the queue after `delay` unless re-armed or cleared first. One timer per
    /// connection: arming replaces the previous deadline.
    ///
    /// Re-arming happens on every request, so it must not cost a system call each time: the
    /// Dispatch timer is moved only when the new deadline is earlier than the one it will fire
    /// at; when it fires early (the deadline moved later, or was cleared) it re-arms itself or
    /// does nothing. A keep-alive connection thus touches its timer about once per timeout.
    public func setTimer(after delay: Duration, _ handler: @escaping () -> Void) {
        guard !lingering else { return } // the linger deadline stands
        armTimer(after: delay, handler)
    }

    private func armTimer(after delay: Duration, _ handler: @escaping () -> Void) {
        guard state == .open else { return }
        timerHandler = handler
        let deadline = DispatchTime.now() + .nanoseconds(Self.nanoseconds(delay))
        timerDeadline = deadline
        if let timer {
            if let scheduled = timerScheduledAt, scheduled <= deadline { return }
            timer.schedule(deadline: deadline, leeway: .milliseconds(1))
        } else {
            let timer = DispatchSource.makeTimerSource(queue: queue)
            timer.setEventHandler { [weak self] in self?.timerFired() }
            timer.schedule(deadline: deadline, leeway: .milliseconds(1))
            self.timer = timer
            timer.resume()
        }
        timerScheduledAt = deadline
    }

    /// Clears the timer (no system call: a pending fire finds no deadline and does nothing).
    public func clearTimer() {
        guard !lingering else { return }
        timerHandler = nil
        timerDeadline = nil
    }

    private func timerFired() {
        timerScheduledAt = nil
        guard let deadline = timerDeadline else { return }
        if DispatchTime.now() < deadline {
            timer?.schedule(deadline: deadline, leeway: .milliseconds(1))
            timerScheduledAt = deadline
            return
        }
        let handler = timerHandler
        timerHandler = nil
        timerDeadline = nil
        handler?()
    }

    private static func nanoseconds(_ d: Duration) -> Int {
        let (s, atto) = d.components
        let total = Double(s) * 1e9 + Double(atto) / 1e9
        return Int(min(max(total, 0), Double(Int.max / 2)))
    }

    // MARK: - Closing

    /// Closes now: pending writes are dropped and their completions run with `false`.
    public func close() {
        guard state == .open else { return }
        state = .closing
        timer?.cancel()
        timer = nil
        timerHandler = nil
        setInterest(read: false, write: false)
        state = .closed
        _ = Glibc.close(fd)
        outbound.removeAll()
        let pending = completions
        completions.removeAll()
        for entry in pending { entry.callback(false) }
        delegate?.connectionDidClose(self)
        delegate = nil
    }
}
