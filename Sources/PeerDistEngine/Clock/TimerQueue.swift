import Dispatch
import HeapModule
import Synchronization

/// Every timer of one `SystemEngineClock`: a min-heap of deadlines served by a single dispatch
/// timer, so that a parked wait costs one heap entry, not a sleeping task of its own.
///
/// Cancelling removes the entry's action at once (so what it captured is freed); its heap slot is
/// dropped when it comes due, or sooner when stale slots outnumber live ones (the heap is then
/// rebuilt), so the heap never holds more than twice the live timers. Actions run on the queue's
/// serial dispatch queue, outside its lock, in deadline order.
final class TimerQueue: @unchecked Sendable {
    // Safety: `state` is a Mutex; `source` is set up in init and re-armed only under that lock.
    // MARK: - Properties

    private struct Slot: Comparable {
        let deadline: ContinuousClock.Instant
        let id: UInt64

        static func < (lhs: Slot, rhs: Slot) -> Bool {
            lhs.deadline == rhs.deadline ? lhs.id < rhs.id : lhs.deadline < rhs.deadline
        }
    }

    private struct State {
        var heap = Heap<Slot>()
        var actions: [UInt64: @Sendable () -> Void] = [:]
        var nextID: UInt64 = 0
        /// The deadline the dispatch timer is armed for, nil while disarmed.
        var armedFor: ContinuousClock.Instant?
    }

    private let state = Mutex(State())
    private let queue = DispatchQueue(label: "peerdist.engine.timers")
    private let source: any DispatchSourceTimer

    // MARK: - Init

    init() {
        source = DispatchSource.makeTimerSource(queue: queue)
        source.setEventHandler { [weak self] in self?.fire() }
        source.activate()
    }

    deinit {
        source.cancel()
    }

    // MARK: - API

    /// Live timers (scheduled, neither fired nor cancelled).
    var count: Int { state.withLock { $0.actions.count } }

    /// Heap slots, live and stale (for tests of the bound).
    var heapSlots: Int { state.withLock { $0.heap.count } }

    /// Runs `action` on the timer queue at or after `deadline`, unless cancelled first.
    func schedule(at deadline: ContinuousClock.Instant, _ action: @escaping @Sendable () -> Void) -> UInt64 {
        state.withLock { state in
            state.nextID &+= 1
            let id = state.nextID
            state.actions[id] = action
            state.heap.insert(Slot(deadline: deadline, id: id))
            if state.armedFor.map({ deadline < $0 }) ?? true { arm(&state, for: deadline) }
            return id
        }
    }

    /// Calls off a timer; does nothing when it already ran or was cancelled.
    func cancel(_ id: UInt64) {
        state.withLock { state in
            guard state.actions.removeValue(forKey: id) != nil else { return }
            // Lazy deletion, bounded: rebuild once stale slots outnumber the live ones.
            if state.heap.count > 64, state.heap.count > 2 * state.actions.count {
                let live = state.actions
                state.heap = Heap(state.heap.unordered.filter { live[$0.id] != nil })
            }
        }
    }

    // MARK: - Private

    private func arm(_ state: inout State, for deadline: ContinuousClock.Instant) {
        state.armedFor = deadline
        // At most a day ahead: a later deadline is re-armed for when that day has passed.
        let delay = min(max(deadline - .now, .zero), .seconds(86_400))
        let (seconds, attoseconds) = delay.components
        source.schedule(
            deadline: .now() + .nanoseconds(Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)),
            leeway: .milliseconds(1))
    }

    /// Runs every due action, then re-arms for the earliest remaining deadline.
    private func fire() {
        while true {
            let action = state.withLock { state -> (@Sendable () -> Void)? in
                let now = ContinuousClock.now
                while let first = state.heap.min {
                    if state.actions[first.id] == nil {
                        _ = state.heap.removeMin()
                        continue
                    }
                    guard first.deadline <= now else {
                        arm(&state, for: first.deadline)
                        return nil
                    }
                    _ = state.heap.removeMin()
                    return state.actions.removeValue(forKey: first.id)
                }
                state.armedFor = nil
                return nil
            }
            guard let action else { return }
            action()
        }
    }
}
