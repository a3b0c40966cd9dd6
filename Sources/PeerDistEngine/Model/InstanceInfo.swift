import Foundation

/// What `PeerDistStartup` / `PeerDistGetStatusEx` report about an instance.
public struct InstanceInfo: Sendable, Hashable {
    /// The instance handle (`inst_…`).
    public let handle: String
    /// The highest API version the service supports (`pdwSupportedVersion`, major in the low byte): 2.
    public let version: Int
    /// The service status now.
    public let status: ServiceStatus
    /// Lowest content information version supported (`dwMinVer`): 1.
    public let minVersion: Int
    /// Highest content information version supported (`dwMaxVer`): 2.
    public let maxVersion: Int
    /// The principal that started the instance (the HTTP layer may check it against the caller).
    public let principal: String
    /// When the instance was started.
    public let createdAt: Date
    /// When a call was last made on it.
    public let lastActivityAt: Date
}

/// The result of a status-change long-poll.
public struct StatusChange: Sendable, Hashable {
    /// The status now.
    public let status: ServiceStatus
    /// `true` when it differs from the caller's `since`; `false` when the wait timed out.
    public let changed: Bool
}

/// The service controls of `/admin/policy` and `/admin/service`.
public struct ServiceControls: Sendable, Hashable {
    /// `false` when PeerDist is disabled by policy.
    public var policyEnabled: Bool
    /// `false` when the service is unavailable.
    public var available: Bool
    /// `Retry-After` of 4065 answers while unavailable.
    public var retryAfterSeconds: Int
    /// The status these produce.
    public var status: ServiceStatus {
        if !policyEnabled { return .disabled }
        return available ? .available : .unavailable
    }
}
