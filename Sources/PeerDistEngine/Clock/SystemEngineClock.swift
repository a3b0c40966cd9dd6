/// The production clock: `ContinuousClock` time, timers as sleeping tasks (no thread is held while
/// waiting).
public struct SystemEngineClock: EngineClock {
    // MARK: - Properties

    private let origin: ContinuousClock.Instant

    // MARK: - Init

    /// Creates a clock whose origin is now.
    public init() {
        origin = ContinuousClock.now
    }

    // MARK: - API

    /// The time since the origin.
    public var now: EngineInstant { EngineInstant(sinceOrigin: ContinuousClock.now - origin) }

    /// Schedules `action` on a task that sleeps until `deadline`.
    /// - Parameters:
    ///   - deadline: When to run.
    ///   - action: What to run.
    /// - Returns: A handle that cancels the sleeping task.
    public func schedule(at deadline: EngineInstant, _ action: @escaping @Sendable () -> Void) -> any EngineTimer {
        let wakeUp = origin.advanced(by: deadline.sinceOrigin)
        let task = Task {
            do {
                try await Task.sleep(until: wakeUp, clock: .continuous)
            } catch {
                return
            }
            action()
        }
        return TaskTimer(task: task)
    }
}

private struct TaskTimer: EngineTimer {
    let task: Task<Void, Never>

    func cancel() { task.cancel() }
}
