import Synchronization

/// Completions handed to one dequeue, held until the caller says whether it delivered them
/// (two-phase dequeue).
///
/// **The caller must call exactly one of `commit()` (the answer was written) or `requeue()` (writing
/// it failed).** A reservation dropped unresolved is requeued by `deinit` as a safety net, so no
/// completion is ever lost; a timed-out (empty) reservation needs neither. Requeued completions go
/// back to the front of their port's queue, in order, keeping their sequence numbers, and are handed
/// to the next waiter if one is parked. If the port or its instance has gone in the meantime they
/// are dropped (nobody can dequeue them any more).
public final class Reservation: Sendable {
    // MARK: - Properties

    /// The completions, oldest first (at most the dequeue's `max`; empty when it timed out).
    public let completions: [Completion]
    /// `true` when the wait ended by its timeout with nothing to hand out (a normal answer, not an error).
    public let timedOut: Bool

    private let engine: PeerDistEngine?
    private let instance: String
    private let port: String
    private let resolved: Atomic<Bool>

    // MARK: - Init

    init(engine: PeerDistEngine?, instance: String, port: String, completions: [Completion], timedOut: Bool) {
        self.engine = engine
        self.instance = instance
        self.port = port
        self.completions = completions
        self.timedOut = timedOut
        resolved = Atomic(completions.isEmpty)
    }

    deinit {
        if !resolved.load(ordering: .acquiring) {
            engine?.requeue(completions, instance: instance, port: port)
        }
    }

    // MARK: - API

    /// The completions were delivered: they are gone for good. Idempotent; no effect after `requeue()`.
    public func commit() {
        _ = resolved.exchange(true, ordering: .acquiringAndReleasing)
    }

    /// The completions were not delivered: put them back at the front of the port's queue, in order.
    /// Idempotent; no effect after `commit()`.
    public func requeue() {
        guard !resolved.exchange(true, ordering: .acquiringAndReleasing) else { return }
        engine?.requeue(completions, instance: instance, port: port)
    }
}
