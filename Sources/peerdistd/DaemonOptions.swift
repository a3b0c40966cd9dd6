import ArgumentParser
import HTTPServer
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Every setting of `peerdistd`: a flag, with a `PEERDIST_*` environment variable as fallback,
/// then the embedded default. An invalid value stops the process before it binds.
struct DaemonOptions: ParsableArguments {
    static let configuration = CommandConfiguration(
        commandName: "peerdistd",
        abstract: "PeerDist: the Windows BranchCache Peer Distribution API over HTTP.",
        discussion: "Each option may also be set by the environment variable named in its help; a flag wins over the environment."
    )

    @Option(help: "Address to bind (IPv4 or IPv6). Env PEERDIST_HOST. Default 127.0.0.1.")
    var host: String?

    @Option(help: "Port to bind; 0 = any free port. Env PEERDIST_PORT. Default 8080.")
    var port: Int?

    @Option(help: "Directory for the server secret and other state. Env PEERDIST_DATA_DIR. Default ./data.")
    var dataDir: String?

    @Option(help: "Open connections at most. Env PEERDIST_MAX_CONNECTIONS. Default 10000.")
    var maxConnections: Int?

    @Option(help: "Largest request body in bytes, except content data streams (413 beyond). Env PEERDIST_MAX_BODY_SIZE. Default 1048576.")
    var maxBodySize: Int?

    @Option(help: "Seconds allowed to receive a request head (408). Env PEERDIST_HEADER_TIMEOUT. Default 10.")
    var headerTimeout: Double?

    @Option(help: "Seconds allowed between reads of a request body (408). Env PEERDIST_BODY_TIMEOUT. Default 30.")
    var bodyTimeout: Double?

    @Option(help: "Seconds an idle keep-alive connection stays open. Env PEERDIST_IDLE_TIMEOUT. Default 60.")
    var idleTimeout: Double?

    @Option(help: "Longest long-poll in milliseconds (caps timeoutMs). Env PEERDIST_MAX_WAIT. Default 55000.")
    var maxWait: Int?

    @Option(help: "Seconds a graceful drain waits for requests in flight. Env PEERDIST_DRAIN_TIMEOUT. Default 10.")
    var drainTimeout: Double?

    @Option(help: "Parked long-polls per completion port at most (429 beyond). Env PEERDIST_MAX_WAITERS. Default 10000.")
    var maxWaiters: Int?

    @Option(help: "Seconds an ended operation stays readable while its handle is open. Env PEERDIST_RETENTION. Default 600.")
    var retention: Double?

    @Option(help: "File holding the server secret's raw bytes; unset = generated once in the data directory. Env PEERDIST_SECRET_FILE.")
    var secretFile: String?

    @Option(help: "Bearer token guarding /admin/*; unset = no guard. Env PEERDIST_ADMIN_TOKEN.")
    var adminToken: String?

    @Option(help: "trace, debug, info, notice, warning, error or critical. Env PEERDIST_LOG_LEVEL. Default info.")
    var logLevel: String?

    /// The resolved settings.
    struct Resolved {
        var server = ServerConfiguration()
        var dataDir = "./data"
        var maxWaitMs = 55_000
        var adminToken: String?
        var logLevel = Logger.Level.info
        var maxWaiters = 10_000
        var retention: Duration = .seconds(600)
        var secretFile: String?
    }

    /// Merges flags, environment and defaults, validating each value.
    /// - Throws: `ValidationError` naming the setting and the bad value.
    func resolve(environment: [String: String]) throws -> Resolved {
        var r = Resolved()
        let env = EnvironmentReader(environment)
        r.server.host = host ?? env.string("PEERDIST_HOST") ?? r.server.host
        guard !r.server.host.isEmpty else { throw ValidationError("--host must not be empty") }
        r.server.port = try port ?? env.int("PEERDIST_PORT") ?? r.server.port
        guard (0...65_535).contains(r.server.port) else { throw ValidationError("--port must be 0...65535, got \(r.server.port)") }
        r.dataDir = dataDir ?? env.string("PEERDIST_DATA_DIR") ?? r.dataDir
        r.server.maxConnections = try positive("--max-connections", maxConnections ?? env.int("PEERDIST_MAX_CONNECTIONS")) ?? r.server.maxConnections
        r.server.maxBodySize = try positive("--max-body-size", maxBodySize ?? env.int("PEERDIST_MAX_BODY_SIZE")) ?? r.server.maxBodySize
        r.server.headerTimeout = try duration("--header-timeout", headerTimeout ?? env.double("PEERDIST_HEADER_TIMEOUT")) ?? r.server.headerTimeout
        r.server.bodyTimeout = try duration("--body-timeout", bodyTimeout ?? env.double("PEERDIST_BODY_TIMEOUT")) ?? r.server.bodyTimeout
        r.server.idleTimeout = try duration("--idle-timeout", idleTimeout ?? env.double("PEERDIST_IDLE_TIMEOUT")) ?? r.server.idleTimeout
        r.server.drainTimeout = try duration("--drain-timeout", drainTimeout ?? env.double("PEERDIST_DRAIN_TIMEOUT")) ?? r.server.drainTimeout
        r.maxWaitMs = try positive("--max-wait", maxWait ?? env.int("PEERDIST_MAX_WAIT")) ?? r.maxWaitMs
        r.maxWaiters = try positive("--max-waiters", maxWaiters ?? env.int("PEERDIST_MAX_WAITERS")) ?? r.maxWaiters
        r.retention = try duration("--retention", retention ?? env.double("PEERDIST_RETENTION")) ?? r.retention
        r.secretFile = secretFile ?? env.string("PEERDIST_SECRET_FILE")
        r.adminToken = adminToken ?? env.string("PEERDIST_ADMIN_TOKEN")
        if let token = r.adminToken, token.isEmpty { r.adminToken = nil }
        let level = logLevel ?? env.string("PEERDIST_LOG_LEVEL") ?? "info"
        guard let parsed = Logger.Level(rawValue: level.lowercased()) else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical; got '\(level)'")
        }
        r.logLevel = parsed
        return r
    }

    private func positive(_ name: String, _ value: Int?) throws -> Int? {
        guard let value else { return nil }
        guard value > 0 else { throw ValidationError("\(name) must be positive, got \(value)") }
        return value
    }

    private func duration(_ name: String, _ seconds: Double?) throws -> Duration? {
        guard let seconds else { return nil }
        guard seconds.isFinite, seconds > 0, seconds <= 86_400 else {
            throw ValidationError("\(name) must be a number of seconds in (0, 86400], got \(seconds)")
        }
        return .nanoseconds(Int64(seconds * 1e9))
    }
}

/// Typed reads of `PEERDIST_*` variables; a malformed value is a validation error.
struct EnvironmentReader {
    let environment: [String: String]

    init(_ environment: [String: String]) { self.environment = environment }

    func string(_ name: String) -> String? { environment[name] }

    func int(_ name: String) throws -> Int? {
        guard let text = environment[name] else { return nil }
        guard let value = Int(text) else { throw ValidationError("\(name) must be an integer, got '\(text)'") }
        return value
    }

    func double(_ name: String) throws -> Double? {
        guard let text = environment[name] else { return nil }
        guard let value = Double(text) else { throw ValidationError("\(name) must be a number, got '\(text)'") }
        return value
    }
}
