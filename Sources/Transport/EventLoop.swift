#if canImport(Glibc)
import Glibc
#endif
import CSystemShims
import Dispatch

/// One worker's readiness multiplexer: an epoll instance whose own descriptor is watched by a
/// single Dispatch read source on the worker's serial queue.
///
/// Why not one Dispatch source per socket: on Linux, libdispatch re-arms a source after every
/// event through its manager thread (an eventfd write, a context switch and an epoll_ctl), which
/// per request costs more than the request. Here sockets stay registered level-triggered in the
/// worker's epoll, and the one Dispatch source is re-armed once per batch of ready sockets.
/// Confined to the worker's queue.
final class EventLoop: @unchecked Sendable {
    // Safety: `handlers` and `events` are touched only on `queue` (serial).
    private let epfd: Int32
    private let queue: DispatchQueue
    private var source: (any DispatchSourceRead)?
    private var handlers: [UInt64: Connection] = [:]
    private let tokens: UnsafeMutablePointer<UInt64>
    private let events: UnsafeMutablePointer<UInt32>
    /// Most readiness events taken per epoll_wait.
    private static let batch = 256

    init(queue: DispatchQueue) {
        self.queue = queue
        epfd = peerdist_poller_create()
        tokens = .allocate(capacity: Self.batch)
        events = .allocate(capacity: Self.batch)
        precondition(epfd >= 0, "epoll_create1 failed: errno \(currentErrno())")
        let source = DispatchSource.makeReadSource(fileDescriptor: epfd, queue: queue)
        source.setEventHandler { [unowned self] in self.poll() }
        self.source = source
        source.resume()
    }

    deinit {
        source?.cancel()
        tokens.deallocate()
        events.deallocate()
        Glibc.close(epfd)
    }

    /// Interest in a socket: readable, writable, both or neither.
    struct Interest: Equatable {
        var read: Bool
        var write: Bool
        /// Only the peer's end of sending (while reading is paused).
        var hangup = false
        var isEmpty: Bool { !read && !write && !hangup }
        var mask: UInt32 {
            (read ? UInt32(PEERDIST_EV_READ | PEERDIST_EV_READ_HANGUP) : 0)
                | (write ? UInt32(PEERDIST_EV_WRITE) : 0)
                | (hangup ? UInt32(PEERDIST_EV_READ_HANGUP) : 0)
        }
    }

    /// Moves a socket from interest `old` to `new` (added, modified or removed: a socket with no
    /// interest leaves the epoll, so that a hung-up peer cannot make it spin).
    func update(_ connection: Connection, fd: Int32, from old: Interest, to new: Interest) {
        guard old != new else { return }
        let op: Int32
        if old.isEmpty {
            op = 0
            handlers[connection.id] = connection
        } else if new.isEmpty {
            op = 2
            handlers.removeValue(forKey: connection.id)
        } else {
            op = 1
        }
        _ = peerdist_poller_control(epfd, op, fd, new.mask, connection.id)
    }

    private func poll() {
        while true {
            let n = peerdist_poller_wait(epfd, tokens, events, Int32(Self.batch), 0)
            guard n > 0 else { return }
            for i in 0..<Int(n) {
                // A connection closed earlier in this batch is gone from `handlers`.
                handlers[tokens[i]]?.handle(events: events[i])
            }
            if n < Self.batch { return }
        }
    }
}
