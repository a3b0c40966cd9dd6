/// The production clock: `ContinuousClock` time; timers are entries of one `TimerQueue` (a heap
/// served by a single dispatch timer), so no thread or task is held while waiting.
public struct SystemEngineClock: EngineClock {
    // MARK: - Properties

    private let origin: ContinuousClock.Instant
    private let timers = TimerQueue()

    // MARK: - Init

    /// Creates a clock whose origin is now.
    public init() {
        origin = ContinuousClock.now
    }

    // MARK: - API

    /// The time since the origin.
    public var now: EngineInstant { EngineInstant(sinceOrigin: ContinuousClock.now - origin) }

    /// Schedules `action` on the clock's timer queue for `deadline`.
    /// - Parameters:
    ///   - deadline: When to run.
    ///   - action: What to run.
    /// - Returns: A handle that removes the timer.
    public func schedule(at deadline: EngineInstant, _ action: @escaping @Sendable () -> Void) -> any EngineTimer {
        QueuedTimer(queue: timers, id: timers.schedule(at: origin.advanced(by: deadline.sinceOrigin), action))
    }

    /// Timers scheduled and neither fired nor cancelled.
    public var pendingTimerCount: Int { timers.count }
}

private struct QueuedTimer: EngineTimer {
    let queue: TimerQueue
    let id: UInt64

    func cancel() { queue.cancel(id) }
}
