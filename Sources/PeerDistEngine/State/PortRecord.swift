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
    var queue: Deque<Completion> = []
    var waiters: Deque<Waiter> = []

    init(name: String) {
        self.name = name
    }
}
