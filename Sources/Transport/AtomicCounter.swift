import Synchronization

/// A lock-free counter for ids and round-robin choices.
public final class AtomicCounter: Sendable {
    private let value = Atomic<UInt64>(0)

    /// Creates a counter starting at zero.
    public init() {}

    /// The current value.
    public var current: UInt64 { value.load(ordering: .relaxed) }

    /// Adds one and returns the new value.
    @discardableResult
    public func increment() -> UInt64 { value.add(1, ordering: .relaxed).newValue }
}
