#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch

/// What a connection tells its protocol handler. Every call arrives on the connection's worker queue.
public protocol ConnectionDelegate: AnyObject {
    /// Bytes arrived. They are only valid during the call: copy what is not consumed.
    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer)
    /// The peer closed its sending side (or reset). Reading has stopped.
    func connectionDidReachEOF(_ connection: Connection)
    /// The outbound queue went above the high watermark (`false`) or back below the low one (`true`).
    func connection(_ connection: Connection, writabilityChanged writable: Bool)
    /// The socket is closed; nothing more will be called.
    func connectionDidClose(_ connection: Connection)
}

/// One accepted TCP connection: a non-blocking socket driven by Dispatch read and write sources
/// on a serial worker queue. Confined to that queue: call every method from it.
///
/// Reads land in the worker's scratch buffer. Writes are queued and sent with `sendmsg` (vectored,
/// MSG_NOSIGNAL); each write may carry a completion that runs once its last byte has been accepted
/// by the kernel, or with `false` when the connection closed first. Watermarks report
/// backpressure. Sources are cancelled before the descriptor is closed, and it is closed only in
/// the last cancel handler.
public final class Connection: @unchecked Sendable {
    // Safety: all mutable state is confined to `worker.queue` (serial).

    /// An id unique in the process, for logs.
    public let id: UInt64
    /// The worker whose queue drives this connection.
    public let worker: WorkerPool.Worker
    /// The queue every call must come from.
    public var queue: DispatchQueue { worker.queue }

    private let fd: Int32
    private weak var delegate: (any ConnectionDelegate)?
    private var readSource: (any DispatchSourceRead)?
    private var writeSource: (any DispatchSourceWrite)?
    private var timer: (any DispatchSourceTimer)?
    private var timerHandler: (() -> Void)?
    private var readSuspended = false
    private var writeSuspended = true
    private var readEOF = false
    private var pendingCancels = 0
    private var state = State.open

    private var outbound: [[UInt8]] = []
    private var outboundHeadOffset = 0
    private var bytesQueued: UInt64 = 0
    private var bytesWritten: UInt64 = 0
    private var completions: [(upTo: UInt64, callback: (Bool) -> Void)] = []
    private var writable = true
    private var closeWhenFlushed = false

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

    /// Whether the connection is still open (not closing or closed).
    public var isOpen: Bool { state == .open }

    /// Bytes queued but not yet accepted by the kernel.
    public var bufferedBytes: Int { Int(bytesQueued - bytesWritten) }

    /// Starts reading. Call once, on the queue.
    public func start(delegate: any ConnectionDelegate) {
        self.delegate = delegate
        let source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
        source.setEventHandler { [unowned self] in self.readAvailable() }
        source.setCancelHandler { [self] in self.sourceCancelled() }
        readSource = source
        source.resume()
    }

    // MARK: - Reading

    /// Stops delivering reads (input backpressure). EOF is not seen while paused.
    public func pauseReading() {
        guard let readSource, !readSuspended, state == .open else { return }
        readSource.suspend()
        readSuspended = true
    }

    /// Delivers reads again after `pauseReading()`.
    public func resumeReading() {
        guard let readSource, readSuspended, state == .open, !readEOF else { return }
        readSource.resume()
        readSuspended = false
    }

    private func readAvailable() {
        let scratch = worker.scratch
        for _ in 0..<Self.readsPerEvent {
            guard state == .open, !readSuspended else { return }
            let n = Glibc.read(fd, scratch.baseAddress, scratch.count)
            if n > 0 {
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
        guard !readEOF else { return }
        readEOF = true
        // A level-triggered source fires forever at EOF: stop it.
        pauseReading()
        delegate?.connectionDidReachEOF(self)
    }

    // MARK: - Writing

    /// Queues bytes and tries to send them at once.
    /// - Parameters:
    ///   - parts: buffers sent in order, as one vectored write where possible.
    ///   - completion: runs with `true` once the last byte was handed to the kernel, `false` if the
    ///     connection closed first.
    public func write(_ parts: [[UInt8]], completion: ((Bool) -> Void)? = nil) {
        guard state == .open else {
            completion?(false)
            return
        }
        for part in parts where !part.isEmpty {
            outbound.append(part)
            bytesQueued += UInt64(part.count)
        }
        if let completion { completions.append((bytesQueued, completion)) }
        flush()
    }

    /// Closes once everything queued has been sent.
    public func closeAfterFlush() {
        guard state == .open else { return }
        closeWhenFlushed = true
        if outbound.isEmpty { close() }
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
        if closeWhenFlushed && outbound.isEmpty { close() }
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
        var fired = 0
        while fired < completions.count, completions[fired].upTo <= bytesWritten { fired += 1 }
        if fired > 0 {
            let done = completions[0..<fired]
            completions.removeFirst(fired)
            for entry in done { entry.callback(true) }
        }
    }

    private func armWriteSource() {
        if writeSource == nil {
            let source = DispatchSource.makeWriteSource(fileDescriptor: fd, queue: queue)
            source.setEventHandler { [unowned self] in self.flush() }
            source.setCancelHandler { [self] in self.sourceCancelled() }
            writeSource = source
            writeSuspended = true
        }
        if writeSuspended, let writeSource {
            writeSource.resume()
            writeSuspended = false
        }
    }

    private func disarmWriteSource() {
        if !writeSuspended, let writeSource {
            writeSource.suspend()
            writeSuspended = true
        }
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
    public func setTimer(after delay: Duration, _ handler: @escaping () -> Void) {
        guard state == .open else { return }
        timerHandler = handler
        let nanos = Self.nanoseconds(delay)
        if let timer {
            timer.schedule(deadline: .now() + .nanoseconds(nanos), leeway: .milliseconds(1))
        } else {
            let timer = DispatchSource.makeTimerSource(queue: queue)
            timer.setEventHandler { [weak self] in
                guard let self else { return }
                let handler = self.timerHandler
                self.timerHandler = nil
                handler?()
            }
            timer.schedule(deadline: .now() + .nanoseconds(nanos), leeway: .milliseconds(1))
            self.timer = timer
            timer.resume()
        }
    }

    /// Clears the timer.
    public func clearTimer() {
        timerHandler = nil
        timer?.schedule(deadline: .distantFuture)
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
        pendingCancels = (readSource == nil ? 0 : 1) + (writeSource == nil ? 0 : 1)
        if let readSource {
            if readSuspended { readSource.resume() }
            readSuspended = false
            readSource.cancel()
        }
        if let writeSource {
            if writeSuspended { writeSource.resume() }
            writeSuspended = false
            writeSource.cancel()
        }
        if pendingCancels == 0 { finishClose() }
    }

    private func sourceCancelled() {
        pendingCancels -= 1
        if pendingCancels == 0 { finishClose() }
    }

    private func finishClose() {
        guard state != .closed else { return }
        state = .closed
        _ = Glibc.close(fd)
        readSource = nil
        writeSource = nil
        outbound.removeAll()
        let pending = completions
        completions.removeAll()
        for entry in pending { entry.callback(false) }
        delegate?.connectionDidClose(self)
        delegate = nil
    }
}
