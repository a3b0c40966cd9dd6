import DequeModule

/// A completion port: a FIFO of completions and a FIFO of parked dequeues. Confined to the engine
/// lock. Invariant after every engine call: `queue` is empty or `waiters` is.
final class PortRecord {
    struct Waiter {
        let id: UInt64
        let max: Int
        let resume: @Sendable (Result<Reservation, EngineError>) -> Void
        let timer: (any EngineTimer)?
    }

    /// `default` or the `port_…` handle.
    let name: String
    var nextSequence: UInt64 = 1
    var queue: Deque<Completion> = [] {
        didSet {
            totals.queuedCompletions += queue.count - countedQueue
            countedQueue = queue.count
        }
    }
    var waiters: Deque<Waiter> = [] {
        didSet {
            totals.parkedWaiters += waiters.count - countedWaiters
            countedWaiters = waiters.count
        }
    }
    /// The engine's totals, which its queue and waiters move.
    private let totals: EngineTotals
    private var countedQueue = 0
    private var countedWaiters = 0

    init(name: String, totals: EngineTotals) {
        self.name = name
        self.totals = totals
    }
}
