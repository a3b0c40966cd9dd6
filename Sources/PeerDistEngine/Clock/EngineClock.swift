/// A point on the engine's monotonic time line: the time elapsed since the clock's origin.
public struct EngineInstant: Sendable, Hashable, Comparable {
    /// Time since the clock's origin.
    public var sinceOrigin: Duration

    /// Creates an instant.
    /// - Parameter sinceOrigin: Time since the clock's origin.
    public init(sinceOrigin: Duration) {
        self.sinceOrigin = sinceOrigin
    }

    /// The instant `duration` later.
    /// - Parameter duration: The offset (may be negative).
    /// - Returns: The shifted instant.
    public func advanced(by duration: Duration) -> EngineInstant {
        EngineInstant(sinceOrigin: sinceOrigin + duration)
    }

    /// Orders instants by time.
    public static func < (lhs: EngineInstant, rhs: EngineInstant) -> Bool { lhs.sinceOrigin < rhs.sinceOrigin }

    /// The time from `rhs` to `lhs`.
    public static func - (lhs: EngineInstant, rhs: EngineInstant) -> Duration { lhs.sinceOrigin - rhs.sinceOrigin }
}

/// A scheduled action that can be called off.
public protocol EngineTimer: Sendable {
    /// Prevents the action from running if it has not started yet. Idempotent.
    func cancel()
}

/// The engine's monotonic clock: timeouts, retention and fault delays are measured with it.
///
/// Production uses `SystemEngineClock`; tests inject `ManualClock` and advance it by hand, so no test
/// depends on real time for correctness.
public protocol EngineClock: Sendable {
    /// The current instant.
    var now: EngineInstant { get }

    /// Runs `action` once, at or after `deadline`, unless cancelled first.
    ///
    /// The action never runs synchronously inside this call (the engine calls it while holding its
    /// lock), and it runs on a thread of the clock's choosing.
    /// - Parameters:
    ///   - deadline: When to run.
    ///   - action: What to run.
    /// - Returns: A handle that cancels the action.
    func schedule(at deadline: EngineInstant, _ action: @escaping @Sendable () -> Void) -> any EngineTimer
}

extension Duration {
    /// The duration in seconds, as dates count them.
    var inSeconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
