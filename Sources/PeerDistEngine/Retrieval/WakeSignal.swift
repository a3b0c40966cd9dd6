import Synchronization

/// Why a waiting read looks again.
enum WakeReason: Sendable {
    /// An AddData stored an entry it waits for.
    case data
    /// Its timeout passed.
    case timeout
    /// It was cancelled, closed, shut down or invalidated (sticky: every later wait answers this).
    case aborted
}

/// The one-shot wake-up of a waiting read: fired by AddData, the read's timer or its abort, awaited
/// by the read's task. A fire before the wait is kept, so no wake-up is lost; an abort is sticky.
final class WakeSignal: Sendable {
    private struct State {
        var pending: WakeReason?
        var waiter: CheckedContinuation<WakeReason, Never>?
        var aborted = false
    }

    private let state = Mutex(State())

    /// Whether the read was aborted.
    var isAborted: Bool { state.withLock { $0.aborted } }

    /// Fires (resumes the waiting task, or keeps the reason for its next wait). A timeout kept is
    /// not replaced by data; an abort replaces anything.
    func fire(_ reason: WakeReason) {
        let resume = state.withLock { state -> (CheckedContinuation<WakeReason, Never>, WakeReason)? in
            if reason == .aborted { state.aborted = true }
            let fired: WakeReason = state.aborted ? .aborted : (state.pending == .timeout ? .timeout : reason)
            guard let waiter = state.waiter else {
                state.pending = fired
                return nil
            }
            state.waiter = nil
            state.pending = nil
            return (waiter, fired)
        }
        if let (waiter, reason) = resume { waiter.resume(returning: reason) }
    }

    /// Waits for the next fire (at once when one is kept).
    func wait() async -> WakeReason {
        await withCheckedContinuation { (continuation: CheckedContinuation<WakeReason, Never>) in
            let now = state.withLock { state -> WakeReason? in
                if state.aborted { return .aborted }
                if let pending = state.pending {
                    state.pending = nil
                    return pending
                }
                state.waiter = continuation
                return nil
            }
            if let now { continuation.resume(returning: now) }
        }
    }
}

