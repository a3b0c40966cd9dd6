/// `PEERDIST_STATUS`: what the service can do now.
public enum ServiceStatus: String, Sendable, Hashable, CaseIterable {
    /// Disabled by policy (`PEERDIST_STATUS_DISABLED`).
    case disabled
    /// Not ready; try again later (`PEERDIST_STATUS_UNAVAILABLE`).
    case unavailable
    /// Ready (`PEERDIST_STATUS_AVAILABLE`).
    case available
}
