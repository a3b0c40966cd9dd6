/// The test-harness faults of `/admin/faults`: operations of the listed kinds end no sooner than
/// `completionDelay` after they started (measured with the engine clock), so a cancellation during
/// the delay wins deterministically. The delay is fixed when an operation is accepted.
public struct FaultSettings: Sendable, Hashable {
    /// The minimum lifetime of an affected operation; `.zero` disables faults.
    public var completionDelay: Duration
    /// The kinds affected; `nil` means every kind.
    public var kinds: Set<OperationKind>?

    /// Creates settings; the defaults (`{}`) mean no faults.
    /// - Parameters:
    ///   - completionDelay: The minimum lifetime of affected operations.
    ///   - kinds: The kinds affected, `nil` for all.
    public init(completionDelay: Duration = .zero, kinds: Set<OperationKind>? = nil) {
        self.completionDelay = completionDelay
        self.kinds = kinds
    }

    /// Convenience: the delay in milliseconds, as `/admin/faults` spells it.
    /// - Parameters:
    ///   - completionDelayMs: The delay in milliseconds.
    ///   - kinds: The kinds affected, `nil` for all.
    public init(completionDelayMs: Int, kinds: Set<OperationKind>? = nil) {
        self.init(completionDelay: .milliseconds(completionDelayMs), kinds: kinds)
    }

    /// The delay in milliseconds.
    public var completionDelayMs: Int {
        let (seconds, attoseconds) = completionDelay.components
        return Int(seconds) * 1_000 + Int(attoseconds / 1_000_000_000_000_000)
    }

    /// The delay that applies to an operation of `kind` (`nil` when none).
    func delay(for kind: OperationKind) -> Duration? {
        guard completionDelay > .zero else { return nil }
        if let kinds, !kinds.contains(kind) { return nil }
        return completionDelay
    }
}
