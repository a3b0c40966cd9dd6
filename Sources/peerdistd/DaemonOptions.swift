import ArgumentParser
import Foundation
import HTTPServer
import Logging
import PeerDistAPI
import PeerDistEngine

#if canImport(Glibc)
import Glibc
#endif

/// Every setting of `peerdistd`: a flag, with a `PEERDIST_*` environment variable as fallback,
/// then the embedded default. An invalid value stops the process before it binds.
struct DaemonOptions: ParsableCommand {
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

    @Option(help: "Open connections at most. Env PEERDIST_MAX_CONNECTIONS. Default \(ServerConfiguration().maxConnections).")
    var maxConnections: Int?

    @Option(help: "Largest request body in bytes, except content data streams (413 beyond). Env PEERDIST_MAX_BODY_SIZE. Default \(ServerConfiguration().maxBodySize).")
    var maxBodySize: Int?

    @Option(help: "Seconds allowed to receive a request head (408). Env PEERDIST_HEADER_TIMEOUT. Default \(ServerConfiguration().headerTimeout.components.seconds).")
    var headerTimeout: Double?

    @Option(help: "Seconds allowed between reads of a request body (408). Env PEERDIST_BODY_TIMEOUT. Default \(ServerConfiguration().bodyTimeout.components.seconds).")
    var bodyTimeout: Double?

    @Option(help: ArgumentHelp("Slowest request body in bytes per second, averaged after a 5 s grace (408 below); 0 = no minimum. Env PEERDIST_MIN_BODY_RATE. Default \(ServerConfiguration().minBodyDataRate)."))
    var minBodyRate: Int?

    @Option(help: "Request-body bytes one HTTP/2 connection holds for its handlers at most; past it, flow-control credit waits until handlers take bytes. Env PEERDIST_MAX_BUFFERED_BODY_PER_CONNECTION. Default \(ServerConfiguration().maxBufferedBodyPerConnection).")
    var maxBufferedBodyPerConnection: Int?

    @Option(help: "Milliseconds a 429 answer is held before it is sent, slowing a client that retries without honouring Retry-After; 0 = at once. Env PEERDIST_TOO_MANY_REQUESTS_DELAY. Default \(Int(ServerConfiguration().tooManyRequestsDelay / .milliseconds(1))).")
    var tooManyRequestsDelay: Int?

    @Option(help: "401 and 403 answers one client address may get in \(ServerConfiguration().refusalWindow.components.seconds) s before further ones are held --too-many-requests-delay, so that tokens cannot be guessed quickly; 0 = never held. Env PEERDIST_AUTH_FAILURES_BEFORE_DELAY. Default \(ServerConfiguration().refusalsBeforeDelay).")
    var authFailuresBeforeDelay: Int?

    @Option(help: "Seconds an idle keep-alive connection stays open. Env PEERDIST_IDLE_TIMEOUT. Default \(ServerConfiguration().idleTimeout.components.seconds).")
    var idleTimeout: Double?

    @Option(help: "Longest long-poll in milliseconds (caps timeoutMs). Env PEERDIST_MAX_WAIT. Default \(PeerDistService.Settings.defaultMaxWaitMs).")
    var maxWait: Int?

    @Option(help: "Seconds a graceful drain waits for requests in flight. Env PEERDIST_DRAIN_TIMEOUT. Default \(ServerConfiguration().drainTimeout.components.seconds).")
    var drainTimeout: Double?

    @Option(help: "Parked long-polls per completion port at most (429 beyond). Env PEERDIST_MAX_WAITERS. Default \(EngineLimits().maxWaitersPerPort).")
    var maxWaiters: Int?

    @Option(help: "Bound in bytes of the block cache in the data directory (least recently used blocks are evicted past it). Env PEERDIST_CACHE_SIZE. Default \(PeerDistService.Settings.defaultCacheSize).")
    var cacheSize: Int64?

    @Option(help: "Bytes of the block cache one principal may hold before its entries are the first evicted; default: --cache-size divided among the principals holding entries. Env PEERDIST_CACHE_SHARE.")
    var cacheShare: Int64?

    @Option(help: "Seconds an ended operation stays readable while its handle is open. Env PEERDIST_RETENTION. Default \(EngineLimits().retention.components.seconds).")
    var retention: Double?

    @Option(help: "Seconds after which an instance on which nothing was called, and no long-poll is parked, is shut down; 0 = never. Env PEERDIST_INSTANCE_IDLE_TIMEOUT. Default \(EngineLimits().instanceIdleTimeout.components.seconds).")
    var instanceIdleTimeout: Double?

    @Option(help: "Instances one principal may have open (429 beyond). Env PEERDIST_MAX_INSTANCES_PER_PRINCIPAL. Default \(EngineLimits().maxInstancesPerPrincipal).")
    var maxInstancesPerPrincipal: Int?

    @Option(help: "Instances open at once across all principals (429 beyond); at least \(EngineLimits.instanceCapFactor) × --max-instances-per-principal (refused below; unset = the larger of \(EngineLimits().maxInstances) and that). Env PEERDIST_MAX_INSTANCES.")
    var maxInstances: Int?

    @Option(help: "Content-information encodings (GET and POST …/contentinfo) one principal may have running at once (429 beyond). Env PEERDIST_MAX_ENCODINGS_PER_PRINCIPAL. Default \(EngineLimits().maxEncodingsPerPrincipal).")
    var maxEncodingsPerPrincipal: Int?

    @Option(help: "Pending operations one principal may have (429 beyond). Env PEERDIST_MAX_PENDING_PER_PRINCIPAL. Default \(EngineLimits().maxPendingOperationsPerPrincipal).")
    var maxPendingPerPrincipal: Int?

    @Option(help: "Parked long-polls one principal may have (429 beyond). Env PEERDIST_MAX_WAITERS_PER_PRINCIPAL. Default \(EngineLimits().maxParkedWaitersPerPrincipal).")
    var maxWaitersPerPrincipal: Int?

    @Option(help: "Open ports, streams and content-information handles one principal may have (429 beyond). Env PEERDIST_MAX_HANDLES_PER_PRINCIPAL. Default \(EngineLimits().maxOpenHandlesPerPrincipal).")
    var maxHandlesPerPrincipal: Int?

    @Option(help: "Upload bytes one principal may have in flight: each pending append reserves its length, at most one append window (\(EngineLimits().appendWindowBytes) bytes), each pending AddData its length, at most \(EngineLimits().largestUploadReservation) bytes (429 beyond). Env PEERDIST_MAX_UPLOAD_BYTES_PER_PRINCIPAL. Default \(EngineLimits().maxUploadBytesInFlightPerPrincipal).")
    var maxUploadBytesPerPrincipal: Int?

    @Option(help: "Bytes one principal may hold in memory: content information its handles read (one copy per publication, version and range), its retrievals' content information and data kept before it, read buffers kept and reserved, upload reservations (429 beyond). Env PEERDIST_MAX_MEMORY_PER_PRINCIPAL. Default \(EngineLimits().maxMemoryPerPrincipal).")
    var maxMemoryPerPrincipal: Int?

    @Option(help: "File holding the server secret's raw bytes; unset = generated once in the data directory. Env PEERDIST_SECRET_FILE.")
    var secretFile: String?

    @Option(help: "Bearer token guarding /admin/* (at least 16 bytes); visible in the process list on the command line, so prefer --admin-token-file or the environment. Unset = no admin token: /admin/* is open without a tokens file, closed (403) with one. Env PEERDIST_ADMIN_TOKEN.")
    var adminToken: String?

    @Option(help: "File holding the admin token (one line; private to the owner: refused otherwise), instead of --admin-token. Env PEERDIST_ADMIN_TOKEN_FILE.")
    var adminTokenFile: String?

    @Option(help: "File of 'NAME TOKEN' lines ('#' comments): every request but /healthz, /readyz and /metrics then needs 'Authorization: Bearer TOKEN', and NAME is its principal; reloaded on SIGHUP. Unset = one principal for all. Env PEERDIST_TOKENS_FILE.")
    var tokensFile: String?

    @Option(help: "Bearer token /metrics then wants (16 to 512 characters, as a tokens file's); unset = /metrics is open. Env PEERDIST_METRICS_TOKEN.")
    var metricsToken: String?

    @Flag(help: "Serve each principal's memory in /metrics as a series labelled with its name (unset: no series names a principal). Env PEERDIST_METRICS_PRINCIPALS=true.")
    var metricsPrincipals = false
    @Option(help: "While the service is open (no --tokens-file): a Host name answered besides loopback ones (localhost, 127.0.0.1, [::1], any port); repeat it or separate names with commas; '*' = any. Others get 421, against DNS rebinding. Env PEERDIST_ALLOWED_HOST.")
    var allowedHost: [String] = []

    @Flag(help: "Serve a non-loopback address without a tokens file or an admin token (refused otherwise). Env PEERDIST_ALLOW_ANONYMOUS=true.")
    var allowAnonymous = false

    @Option(help: "trace, debug, info, notice, warning, error or critical. Env PEERDIST_LOG_LEVEL. Default info.")
    var logLevel: String?

    @Option(help: "Log line format: text or json. Env PEERDIST_LOG_FORMAT. Default text.")
    var logFormat: String?

    @Option(help: "Engine clock: system, or manual (test harnesses: waits, long-polls, retention and fault delays move only by POST /admin/clock/advance; loopback --host only). Env PEERDIST_CLOCK. Default system.")
    var clock: String?

    @Option(help: "Optional configuration file of 'key = value' lines; keys are the long option names without dashes (port, max-wait, …). Env PEERDIST_CONFIG. Precedence: flag, environment, file, default.")
    var config: String?

    /// Log line formats.
    enum LogFormat: String { case text, json }

    /// Engine clocks.
    enum ClockMode: String { case system, manual }

    /// The resolved settings.
    struct Resolved {
        var server = ServerConfiguration()
        var dataDir = "./data"
        var maxWaitMs = PeerDistService.Settings.defaultMaxWaitMs
        var adminToken: String?
        /// Whether the admin token came from the command line (visible in the process list).
        var adminTokenOnCommandLine = false
        var logLevel = Logger.Level.info
        var logFormat = LogFormat.text
        var limits = EngineLimits()
        var secretFile: String?
        var tokensFile: String?
        var allowAnonymous = false
        var allowedHosts: [String] = []
        var clock = ClockMode.system
        var cacheSize = PeerDistService.Settings.defaultCacheSize
        var cacheShare: Int64?
        var metricsToken: String?
        var metricsPrincipals = false
    }

    /// Merges flags, environment, the configuration file and defaults, validating each value.
    /// - Throws: `ValidationError` naming the setting and the bad value.
    func resolve(environment: [String: String], file: [String: String] = [:]) throws -> Resolved {
        let known = Set(ConfigFile.keys)
        if let unknown = file.keys.sorted().first(where: { !known.contains($0) }) {
            throw ValidationError("unknown key '\(unknown)' in the configuration file")
        }
        let src = SettingSource(environment: environment, file: file)
        var r = Resolved()
        r.server.host = host ?? src.string("host") ?? r.server.host
        guard !r.server.host.isEmpty else { throw ValidationError("--host must not be empty") }
        r.server.port = try port ?? src.int("port") ?? r.server.port
        guard (0...65_535).contains(r.server.port) else { throw ValidationError("--port must be 0...65535, got \(r.server.port)") }
        r.dataDir = dataDir ?? src.string("data-dir") ?? r.dataDir
        r.server.maxConnections = try positive("--max-connections", maxConnections ?? src.int("max-connections")) ?? r.server.maxConnections
        r.server.maxBodySize = try positive("--max-body-size", maxBodySize ?? src.int("max-body-size")) ?? r.server.maxBodySize
        r.server.headerTimeout = try duration("--header-timeout", headerTimeout ?? src.double("header-timeout")) ?? r.server.headerTimeout
        r.server.bodyTimeout = try duration("--body-timeout", bodyTimeout ?? src.double("body-timeout")) ?? r.server.bodyTimeout
        r.server.minBodyDataRate = try nonNegative("--min-body-rate", minBodyRate ?? src.int("min-body-rate")) ?? r.server.minBodyDataRate
        r.server.maxBufferedBodyPerConnection = try positive(
            "--max-buffered-body-per-connection", maxBufferedBodyPerConnection ?? src.int("max-buffered-body-per-connection")
        ) ?? r.server.maxBufferedBodyPerConnection
        if let delay = try nonNegative("--too-many-requests-delay", tooManyRequestsDelay ?? src.int("too-many-requests-delay")) {
            guard delay <= 60_000 else { throw ValidationError("--too-many-requests-delay must be 0 to 60000 milliseconds, got \(delay)") }
            r.server.tooManyRequestsDelay = .milliseconds(delay)
        }
        r.server.refusalsBeforeDelay = try nonNegative(
            "--auth-failures-before-delay", authFailuresBeforeDelay ?? src.int("auth-failures-before-delay")) ?? r.server.refusalsBeforeDelay
        r.server.idleTimeout = try duration("--idle-timeout", idleTimeout ?? src.double("idle-timeout")) ?? r.server.idleTimeout
        r.server.drainTimeout = try duration("--drain-timeout", drainTimeout ?? src.double("drain-timeout")) ?? r.server.drainTimeout
        r.maxWaitMs = try positive("--max-wait", maxWait ?? src.int("max-wait")) ?? r.maxWaitMs
        r.limits.maxWaitersPerPort = try positive("--max-waiters", maxWaiters ?? src.int("max-waiters")) ?? r.limits.maxWaitersPerPort
        r.cacheSize = try positive("--cache-size", cacheSize ?? src.int64("cache-size")) ?? r.cacheSize
        r.cacheShare = try positive("--cache-share", cacheShare ?? src.int64("cache-share"))
        r.limits.retention = try duration("--retention", retention ?? src.double("retention")) ?? r.limits.retention
        if let idle = try instanceIdleTimeout ?? src.double("instance-idle-timeout") {
            r.limits.instanceIdleTimeout = idle == 0 ? .zero : try duration("--instance-idle-timeout", idle) ?? .zero
        }
        r.limits.maxInstancesPerPrincipal = try positive(
            "--max-instances-per-principal", maxInstancesPerPrincipal ?? src.int("max-instances-per-principal")) ?? r.limits.maxInstancesPerPrincipal
        if let cap = try positive("--max-instances", maxInstances ?? src.int("max-instances")) {
            guard cap >= r.limits.smallestInstanceCap else {
                throw ValidationError(
                    "--max-instances must be at least \(EngineLimits.instanceCapFactor) × --max-instances-per-principal "
                        + "(\(r.limits.smallestInstanceCap)), got \(cap): else a few principals could take every instance")
            }
            r.limits.maxInstances = cap
        } else {
            r.limits.maxInstances = max(r.limits.maxInstances, r.limits.smallestInstanceCap)
        }
        r.limits.maxEncodingsPerPrincipal = try positive(
            "--max-encodings-per-principal", maxEncodingsPerPrincipal ?? src.int("max-encodings-per-principal"))
            ?? r.limits.maxEncodingsPerPrincipal
        r.limits.maxPendingOperationsPerPrincipal = try positive(
            "--max-pending-per-principal", maxPendingPerPrincipal ?? src.int("max-pending-per-principal")) ?? r.limits.maxPendingOperationsPerPrincipal
        r.limits.maxParkedWaitersPerPrincipal = try positive(
            "--max-waiters-per-principal", maxWaitersPerPrincipal ?? src.int("max-waiters-per-principal")) ?? r.limits.maxParkedWaitersPerPrincipal
        r.limits.maxOpenHandlesPerPrincipal = try positive(
            "--max-handles-per-principal", maxHandlesPerPrincipal ?? src.int("max-handles-per-principal")) ?? r.limits.maxOpenHandlesPerPrincipal
        r.limits.maxUploadBytesInFlightPerPrincipal = try positive(
            "--max-upload-bytes-per-principal", maxUploadBytesPerPrincipal ?? src.int("max-upload-bytes-per-principal"))
            ?? r.limits.maxUploadBytesInFlightPerPrincipal
        guard r.limits.maxUploadBytesInFlightPerPrincipal >= r.limits.largestUploadReservation else {
            throw ValidationError("--max-upload-bytes-per-principal must be at least what one AddData reserves (\(r.limits.largestUploadReservation) bytes)")
        }
        r.limits.maxMemoryPerPrincipal = try positive(
            "--max-memory-per-principal", maxMemoryPerPrincipal ?? src.int("max-memory-per-principal")) ?? r.limits.maxMemoryPerPrincipal
        guard r.limits.maxMemoryPerPrincipal >= r.limits.smallestMemoryBudget else {
            throw ValidationError("--max-memory-per-principal must be at least what one AddData or one read holds (\(r.limits.smallestMemoryBudget) bytes)")
        }
        r.secretFile = secretFile ?? src.string("secret-file")
        r.adminToken = adminToken ?? src.string("admin-token")
        if let token = r.adminToken, token.isEmpty { r.adminToken = nil }
        r.adminTokenOnCommandLine = adminToken?.isEmpty == false
        if let path = adminTokenFile ?? src.string("admin-token-file"), !path.isEmpty {
            guard r.adminToken == nil else { throw ValidationError("give the admin token once: --admin-token or --admin-token-file, not both") }
            r.adminToken = try Self.readAdminTokenFile(path)
        }
        r.tokensFile = tokensFile ?? src.string("tokens-file")
        if let path = r.tokensFile, path.isEmpty { r.tokensFile = nil }
        r.allowAnonymous = try allowAnonymous || src.bool("allow-anonymous") == true
        r.metricsToken = metricsToken ?? src.string("metrics-token")
        if let token = r.metricsToken, token.isEmpty { r.metricsToken = nil }
        if let token = r.metricsToken, !(16...512).contains(token.utf8.count) {
            throw ValidationError("--metrics-token must be 16 to 512 characters, got \(token.utf8.count)")
        }
        r.metricsPrincipals = try metricsPrincipals || src.bool("metrics-principals") == true
        let hostLists = allowedHost.isEmpty ? [src.string("allowed-host") ?? ""] : allowedHost
        r.allowedHosts = hostLists.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if let bad = r.allowedHosts.first(where: { name in name != "*" && !name.allSatisfy { $0.isASCII && !$0.isWhitespace && $0 != "/" } }) {
            throw ValidationError("--allowed-host must be host names or '*', got '\(bad)'")
        }
        let level = logLevel ?? src.string("log-level") ?? "info"
        guard let parsed = Logger.Level(rawValue: level.lowercased()) else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical; got '\(level)'")
        }
        r.logLevel = parsed
        let format = logFormat ?? src.string("log-format") ?? "text"
        guard let parsedFormat = LogFormat(rawValue: format.lowercased()) else {
            throw ValidationError("--log-format must be text or json; got '\(format)'")
        }
        r.logFormat = parsedFormat
        let clockName = clock ?? src.string("clock") ?? "system"
        guard let parsedClock = ClockMode(rawValue: clockName.lowercased()) else {
            throw ValidationError("--clock must be system or manual; got '\(clockName)'")
        }
        // A hand-driven clock lets any caller stall or expire every wait: test harnesses only.
        if parsedClock == .manual, !Self.isLoopback(r.server.host) {
            throw ValidationError("--clock manual needs a loopback --host (127.0.0.0/8 or ::1), got '\(r.server.host)'")
        }
        r.clock = parsedClock
        // Last, once every value is known to be well formed.
        try Self.checkExposure(r)
        return r
    }

    /// The admin token file's one line (trailing whitespace and line end dropped), checked as
    /// the secret file is: private to its owner.
    static func readAdminTokenFile(_ path: String) throws -> String {
        let bytes: [UInt8]
        do {
            bytes = try PrivateFile.read(path, what: "the admin token file", maxBytes: TokenTable.maxLineBytes)
        } catch {
            throw ValidationError(error.description)
        }
        let token = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else { throw ValidationError("the admin token file \(path) is empty") }
        return token
    }

    /// Safe defaults (API.md, Access): a loopback bind may stay open for development; any other
    /// address wants both a tokens file and an admin token, or `--allow-anonymous`.
    /// - Throws: `ValidationError` saying what is missing and how to proceed.
    static func checkExposure(_ r: Resolved) throws {
        guard !r.allowAnonymous, !isLoopback(r.server.host) else { return }
        var missing: [String] = []
        if r.tokensFile == nil { missing.append("--tokens-file") }
        if r.adminToken == nil { missing.append("--admin-token") }
        guard missing.isEmpty else {
            throw ValidationError(
                "refusing to serve \(r.server.host), which is not a loopback address, without \(missing.joined(separator: " and ")): "
                    + "anyone who can reach it could call every route, /admin/* included. Give \(missing.joined(separator: " and ")), "
                    + "bind 127.0.0.1, or pass --allow-anonymous to serve it open anyway")
        }
    }

    /// Whether a bind address reaches this host only (`AccessControl.isLoopback`).
    static func isLoopback(_ host: String) -> Bool { AccessControl.isLoopback(host) }

    private func positive(_ name: String, _ value: Int?) throws -> Int? {
        guard let value else { return nil }
        guard value > 0 else { throw ValidationError("\(name) must be positive, got \(value)") }
        return value
    }

    private func positive(_ name: String, _ value: Int64?) throws -> Int64? {
        guard let value else { return nil }
        guard value > 0 else { throw ValidationError("\(name) must be positive, got \(value)") }
        return value
    }

    private func nonNegative(_ name: String, _ value: Int?) throws -> Int? {
        guard let value else { return nil }
        guard value >= 0 else { throw ValidationError("\(name) must be 0 or more, got \(value)") }
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

/// A setting's value from the environment (`PEERDIST_MAX_WAIT`) or else the configuration file
/// (`max-wait`); a malformed value is a validation error naming where it came from.
struct SettingSource {
    let environment: [String: String]
    let file: [String: String]

    private func raw(_ key: String) -> (String, String)? {
        let variable = "PEERDIST_" + key.uppercased().replacingOccurrences(of: "-", with: "_")
        if let value = environment[variable] { return (value, variable) }
        if let value = file[key] { return (value, "'\(key)' in the configuration file") }
        return nil
    }

    func string(_ key: String) -> String? { raw(key)?.0 }

    func int(_ key: String) throws -> Int? {
        guard let (text, origin) = raw(key) else { return nil }
        guard let value = Int(text) else { throw ValidationError("\(origin) must be an integer, got '\(text)'") }
        return value
    }

    func int64(_ key: String) throws -> Int64? {
        guard let (text, origin) = raw(key) else { return nil }
        guard let value = Int64(text) else { throw ValidationError("\(origin) must be an integer, got '\(text)'") }
        return value
    }

    /// `true`/`1`/`yes` or `false`/`0`/`no`, any case.
    func bool(_ key: String) throws -> Bool? {
        guard let (text, origin) = raw(key) else { return nil }
        switch text.lowercased() {
        case "true", "1", "yes": return true
        case "false", "0", "no", "": return false
        default: throw ValidationError("\(origin) must be true or false, got '\(text)'")
        }
    }

    func double(_ key: String) throws -> Double? {
        guard let (text, origin) = raw(key) else { return nil }
        guard let value = Double(text) else { throw ValidationError("\(origin) must be a number, got '\(text)'") }
        return value
    }
}

/// The optional configuration file: `key = value` lines, `#` comments, blank lines ignored.
enum ConfigFile {
    /// Every key the file may hold: the long option names without their dashes.
    static let keys = [
        "host", "port", "data-dir", "max-connections", "max-body-size", "header-timeout", "body-timeout", "min-body-rate", "idle-timeout",
        "max-wait", "drain-timeout", "admin-token", "admin-token-file", "log-level", "log-format", "max-waiters", "retention", "cache-size", "cache-share", "secret-file",
        "instance-idle-timeout", "max-instances-per-principal", "max-instances", "max-encodings-per-principal", "max-pending-per-principal", "max-waiters-per-principal",
        "max-handles-per-principal", "max-upload-bytes-per-principal", "max-memory-per-principal",
        "tokens-file", "allow-anonymous", "allowed-host", "clock", "too-many-requests-delay", "auth-failures-before-delay", "metrics-token", "metrics-principals",
        "max-buffered-body-per-connection",
    ]

    /// Reads the file; nil path = no file.
    static func load(path: String?) throws -> [String: String] {
        guard let path else { return [:] }
        // It may hold the admin token, and decides who may call what.
        do {
            try PrivateFile.check(path, what: "the configuration file", fix: "chmod 600")
        } catch {
            throw ValidationError(error.description)
        }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ValidationError("cannot read the configuration file \(path)")
        }
        var result: [String: String] = [:]
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let eq = line.firstIndex(of: "=") else {
                throw ValidationError("\(path):\(number + 1): expected 'key = value'")
            }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces)
            var value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
            result[key] = value
        }
        return result
    }
}

