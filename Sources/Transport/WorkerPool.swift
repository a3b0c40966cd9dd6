import Dispatch

/// A fixed set of serial queues that drive every connection (one per core by default), so the
/// process never has a thread per connection. Each worker has an epoll of its sockets, watched by
/// one Dispatch source. Each worker owns a scratch read buffer: a
/// connection's reads land there, and only the bytes a connection still needs are copied out, so an
/// idle connection holds no buffer at all.
public final class WorkerPool: Sendable {
    /// One serial worker.
    public final class Worker: @unchecked Sendable {
        // Safety: `scratch` is touched only on `queue`, which is serial.
        /// The serial queue of this worker.
        public let queue: DispatchQueue
        let scratch: UnsafeMutableRawBufferPointer
        /// The epoll that reports this worker's sockets.
        let loop: EventLoop

        init(index: Int, scratchSize: Int) {
            queue = DispatchQueue(label: "peerdist.worker.\(index)", qos: .userInitiated)
            scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: scratchSize, alignment: 16)
            loop = EventLoop(queue: queue)
        }

        deinit { scratch.deallocate() }
    }

    /// The workers.
    public let workers: [Worker]
    private let next = AtomicCounter()

    /// Creates `count` workers, each with a `scratchSize`-byte read buffer (large reads mean
    /// fewer, larger body chunks for uploads, hence fewer hand-offs to the hasher).
    public init(count: Int, scratchSize: Int = 262_144) {
        workers = (0..<max(1, count)).map { Worker(index: $0, scratchSize: scratchSize) }
    }

    /// The next worker, round robin.
    public func nextWorker() -> Worker {
        workers[Int(next.increment() % UInt64(workers.count))]
    }
}
