import Foundation

/// Source of the wall-clock timestamps the engine reports (`createdAt`, `endedAt`, `publishedAt`).
public protocol WallClock: Sendable {
    /// The current date.
    var currentDate: Date { get }
}

/// The system's wall clock.
public struct SystemWallClock: WallClock {
    /// Creates the system wall clock.
    public init() {}

    /// `Date()`.
    public var currentDate: Date { Date() }
}
