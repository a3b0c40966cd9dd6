import Foundation
import Synchronization

/// A clock that moves only when told to. **For tests** (engine and API tests): inject it as both the
/// `EngineClock` and the `WallClock` of a `PeerDistEngine`, then `advance(by:)` to fire timeouts,
/// retention expiry and fault delays deterministically.
///
/// Timers due at or before the new time run inside `advance(by:)`, in deadline order (ties in
/// scheduling order), outside the clock's lock; timers they schedule that are already due run too.
/// A timer scheduled for a deadline that has already passed runs at the next `advance(by:)`
/// (`advance(by: .zero)` will do).
public final class ManualClock: EngineClock, WallClock {
    // MARK: - Properties

    private struct Entry {
        let deadline: EngineInstant
        let action: @Sendable () -> Void
    }

    private struct State {
        var now = EngineInstant(sinceOrigin: .zero)
        var nextID: UInt64 = 0
        var timers: [UInt64: Entry] = [:]
    }

    private let state = Mutex(State())
    private let startDate: Date

    // MARK: - Init

    /// Creates a clock at instant zero.
    /// - Parameter startDate: The wall-clock date at instant zero.
    public init(startDate: Date = Date(timeIntervalSince1970: 1_700_000_000)) {
        self.startDate = startDate
    }

    // MARK: - API

    /// The current instant.
    public var now: EngineInstant { state.withLock { $0.now } }

    /// `startDate` plus the time advanced so far.
    public var currentDate: Date {
        startDate.addingTimeInterval(state.withLock { $0.now.sinceOrigin }.inSeconds)
    }

    /// Timers scheduled and neither fired nor cancelled (tests use it to know a waiter has parked).
    public var pendingTimerCount: Int { state.withLock { $0.timers.count } }

    /// Records `action` to run when the clock reaches `deadline`.
    /// - Parameters:
    ///   - deadline: When to run.
    ///   - action: What to run.
    /// - Returns: A handle that removes the timer.
    public func schedule(at deadline: EngineInstant, _ action: @escaping @Sendable () -> Void) -> any EngineTimer {
        let id = state.withLock { state in
            state.nextID += 1
            state.timers[state.nextID] = Entry(deadline: deadline, action: action)
            return state.nextID
        }
        return ManualTimer(clock: self, id: id)
    }

    /// Moves time forward and runs every timer that has come due.
    /// - Parameter duration: How far to move (must not be negative).
    public func advance(by duration: Duration) {
        precondition(duration >= .zero, "ManualClock cannot go backwards")
        let target = state.withLock { state in
            state.now = state.now.advanced(by: duration)
            return state.now
        }
        while let action = takeNextDue(upTo: target) {
            action()
        }
    }

    // MARK: - Private

    fileprivate func cancelTimer(_ id: UInt64) {
        _ = state.withLock { $0.timers.removeValue(forKey: id) }
    }

    private func takeNextDue(upTo target: EngineInstant) -> (@Sendable () -> Void)? {
        state.withLock { state in
            let due = state.timers
                .filter { $0.value.deadline <= target }
                .min { lhs, rhs in
                    (lhs.value.deadline, lhs.key) < (rhs.value.deadline, rhs.key)
                }
            guard let due else { return nil }
            state.timers.removeValue(forKey: due.key)
            return due.value.action
        }
    }
}

private struct ManualTimer: EngineTimer {
    let clock: ManualClock
    let id: UInt64

    func cancel() { clock.cancelTimer(id) }
}
