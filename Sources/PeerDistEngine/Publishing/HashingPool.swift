import Dispatch
import Synchronization

/// A bounded set of serial hashing queues, apart from the callers' threads (the HTTP layer's I/O
/// queues and the Swift concurrency pool). Each stream is pinned to one queue, so its appends are
/// hashed in order; at most `workerCount` hashes run at once.
final class HashingPool: Sendable {
    // MARK: - Properties

    private let queues: [DispatchQueue]
    private let next = Atomic<UInt>(0)

    // MARK: - Init

    init(workerCount: Int) {
        let count = max(1, workerCount)
        queues = (0..<count).map { DispatchQueue(label: "peerdist.hashing.\($0)", qos: .utility) }
    }

    // MARK: - API

    /// The queue for a new stream (round robin).
    func assignQueue() -> DispatchQueue {
        let index = next.add(1, ordering: .relaxed).oldValue
        return queues[Int(index % UInt(queues.count))]
    }
}
