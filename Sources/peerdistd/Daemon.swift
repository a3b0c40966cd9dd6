import CSystemShims
import Dispatch
import Foundation
import HTTPServer
import Logging
import PeerDistAPI
import PeerDistEngine

#if canImport(Glibc)
import Glibc
#endif

/// Wires the service together and owns the process lifecycle. Kept out of `main` so that no
/// closure handed to Dispatch is main-actor isolated.
struct Daemon: Sendable {
    let resolved: DaemonOptions.Resolved
    let logger: Logger

    /// Runs until a signal has drained the server; returns the exit status.
    func run() async -> Int32 {
        // Installed before anything is printed: a SIGTERM sent the instant `listening on` is read
        // must drain, not kill.
        SignalWaiter.shared.install()
        if resolved.adminTokenOnCommandLine {
            logger.warning("the admin token given with --admin-token is visible in the process list to every local user; give it with --admin-token-file or PEERDIST_ADMIN_TOKEN instead")
        }
        let lifecycle = ServiceLifecycle()
        let service: PeerDistService
        do {
            let tokens = try resolved.tokensFile.map { path in try TokensFile.load(path) }
            service = try await PeerDistService.make(
                settings: .init(
                    dataDirectory: resolved.dataDir, maxWaitMs: resolved.maxWaitMs, adminToken: resolved.adminToken,
                    tokens: tokens, allowedHosts: resolved.allowedHosts, secretFile: resolved.secretFile, limits: resolved.limits,
                    requestLog: { LogOutput.shared.enqueue(.request($0)) },
                    manualClock: resolved.clock == .manual ? ManualClock(startDate: Date()) : nil,
                    cacheSize: resolved.cacheSize, cacheShare: resolved.cacheShare, metricsToken: resolved.metricsToken,
                    metricsPrincipals: resolved.metricsPrincipals),
                lifecycle: lifecycle, logger: logger
            )
        } catch {
            // The data directory or the secret is unusable: a configuration error, before binding.
            writeStderr("peerdistd: \(error)\n")
            return 2
        }
        LogOutput.shared.configure(format: resolved.logFormat, requestLabel: logger.label) { [metrics = service.metrics] in
            metrics.countDroppedLogLines($0)
        }
        let server = service.makeHTTPServer(configuration: resolved.server, logger: logger)
        SignalWaiter.shared.onHangup { [resolved, logger, service] in
            Self.reloadTokens(path: resolved.tokensFile, into: service, logger: logger)
        }
        let bound: (host: String, port: Int)
        do {
            bound = try server.start()
        } catch {
            writeStderr("peerdistd: \(error)\n")
            return 1
        }
        let hostText = bound.host.contains(":") ? "[\(bound.host)]" : bound.host
        writeStdoutLine("listening on \(hostText):\(bound.port)")

        logger.info("started", metadata: ["host": "\(bound.host)", "port": "\(bound.port)", "data_dir": "\(resolved.dataDir)",
                                          "admin": "\(service.access.adminAccess.rawValue)"])
        let signal = await Self.waitForTerminationSignal()
        logger.info("draining", metadata: ["signal": "\(signal)"])
        lifecycle.beginDrain()
        service.beginDrain()
        await server.drain()
        logger.info("stopped")
        return 0
    }

    /// SIGHUP: reads the tokens file again and swaps it in; connections and requests in flight
    /// are untouched, but the instances of a principal the file no longer names are shut down
    /// (the line is logged once they are). A file that cannot be read or parsed is refused with a
    /// log line, and the tokens in use stay.
    static func reloadTokens(path: String?, into service: PeerDistService, logger: Logger) {
        guard let path else {
            logger.notice("SIGHUP: no tokens file is configured; nothing to reload")
            return
        }
        do {
            let table = try TokensFile.load(path)
            // Swapped now, in signal order; the revoked principals' instances are shut down after.
            let revocation = try service.replaceTokens(table)
            Task {
                let (revoked, instances) = await revocation.value
                logger.notice("tokens reloaded", metadata: ["tokens_file": "\(path)", "principals": "\(table.count)",
                                                            "revoked": "\(revoked.count)", "instances_shut_down": "\(instances)"])
            }
        } catch {
            logger.error("tokens reload refused; the previous tokens stay in use", metadata: ["tokens_file": "\(path)", "reason": "\(error)"])
        }
    }

    /// Suspends until SIGTERM or SIGINT arrives.
    private static func waitForTerminationSignal() async -> Int32 {
        await withCheckedContinuation { (continuation: CheckedContinuation<Int32, Never>) in
            SignalWaiter.shared.wait(continuation)
        }
    }
}

/// Reads a tokens file, at most `TokenTable.maxFileBytes` (and one more to tell it is too large).
enum TokensFile {
    struct LoadError: Error, CustomStringConvertible {
        let description: String
    }

    static func load(_ path: String) throws -> TokenTable {
        do {
            try PrivateFile.check(path, what: "the tokens file", fix: "chmod 600")
        } catch {
            throw LoadError(description: error.description)
        }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw LoadError(description: "cannot read the tokens file \(path)")
        }
        defer { try? handle.close() }
        let data: Data
        do {
            data = try handle.read(upToCount: TokenTable.maxFileBytes + 1) ?? Data()
        } catch {
            throw LoadError(description: "cannot read the tokens file \(path): \(error)")
        }
        do {
            return try TokenTable.parse(Array(data))
        } catch {
            throw LoadError(description: "the tokens file \(path) is refused: \(error)")
        }
    }
}

/// Turns SIGTERM/SIGINT into one resumption; SIGHUP into calls of the `onHangup` handler. `install()` puts a sigaction handler in place
/// before it returns (a Dispatch signal source is registered asynchronously, so a signal sent
/// just after it could still kill the process); the handler writes to a pipe that a Dispatch
/// read source watches. A signal that arrives before `wait` is kept for it.
final class SignalWaiter: @unchecked Sendable {
    // Safety: `source`, `continuation` and `received` are touched only on `queue`.
    static let shared = SignalWaiter()
    private let queue = DispatchQueue(label: "peerdist.signals")
    private var source: (any DispatchSourceRead)?
    private var continuation: CheckedContinuation<Int32, Never>?
    private var received: Int32?
    private var hangup: (@Sendable () -> Void)?

    /// Catches SIGTERM and SIGINT from now on.
    func install() {
        queue.sync {
            guard source == nil else { return }
            var fd: Int32 = -1
            // SIGHUP too, so that one sent before a handler is set is ignored, not fatal.
            for number in [SIGTERM, SIGINT, SIGHUP] { fd = peerdist_catch_signal(number) }
            guard fd >= 0 else {
                writeStderr("peerdistd: cannot install signal handlers (errno \(errno))\n")
                return
            }
            let source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
            source.setEventHandler { [self] in
                var byte: UInt8 = 0
                while read(fd, &byte, 1) == 1 { deliver(Int32(byte)) }
            }
            source.resume()
            self.source = source
        }
    }

    /// What SIGHUP does from now on (run on the signal queue, one at a time).
    func onHangup(_ handler: @escaping @Sendable () -> Void) {
        queue.async { [self] in hangup = handler }
    }

    private func deliver(_ number: Int32) {
        if number == SIGHUP {
            hangup?()
            return
        }
        if let waiting = continuation {
            continuation = nil
            waiting.resume(returning: number)
        } else if received == nil {
            received = number
        }
    }

    func wait(_ continuation: CheckedContinuation<Int32, Never>) {
        install()
        queue.async { [self] in
            if let number = received {
                received = nil
                continuation.resume(returning: number)
            } else {
                self.continuation = continuation
            }
        }
    }
}
