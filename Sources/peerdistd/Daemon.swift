import Dispatch
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
        let lifecycle = ServiceLifecycle()
        let service: PeerDistService
        do {
            var limits = EngineLimits()
            limits.maxWaitersPerPort = resolved.maxWaiters
            limits.retention = resolved.retention
            service = try PeerDistService(
                settings: .init(
                    dataDirectory: resolved.dataDir, maxWaitMs: resolved.maxWaitMs, adminToken: resolved.adminToken,
                    secretFile: resolved.secretFile, limits: limits),
                lifecycle: lifecycle, logger: logger
            )
        } catch {
            // The data directory or the secret is unusable: a configuration error, before binding.
            writeStderr("peerdistd: \(error)\n")
            return 2
        }
        let server = HTTPServer(
            configuration: resolved.server, router: service.router, logger: logger,
            observer: service, errorRenderer: service.errorRenderer
        )
        let bound: (host: String, port: Int)
        do {
            bound = try server.start()
        } catch {
            writeStderr("peerdistd: \(error)\n")
            return 1
        }
        let hostText = bound.host.contains(":") ? "[\(bound.host)]" : bound.host
        writeStdoutLine("listening on \(hostText):\(bound.port)")

        logger.info("started", metadata: ["host": "\(bound.host)", "port": "\(bound.port)", "data_dir": "\(resolved.dataDir)"])
        let signal = await Self.waitForTerminationSignal()
        logger.info("draining", metadata: ["signal": "\(signal)"])
        lifecycle.beginDrain()
        service.beginDrain()
        await server.drain()
        logger.info("stopped")
        return 0
    }

    /// Suspends until SIGTERM or SIGINT arrives.
    private static func waitForTerminationSignal() async -> Int32 {
        await withCheckedContinuation { (continuation: CheckedContinuation<Int32, Never>) in
            SignalWaiter.shared.wait(continuation)
        }
    }
}

/// Turns SIGTERM/SIGINT into one resumption, from Dispatch signal sources.
final class SignalWaiter: @unchecked Sendable {
    // Safety: `sources` and `continuation` are touched only on `queue`.
    static let shared = SignalWaiter()
    private let queue = DispatchQueue(label: "peerdist.signals")
    private var sources: [any DispatchSourceSignal] = []
    private var continuation: CheckedContinuation<Int32, Never>?

    func wait(_ continuation: CheckedContinuation<Int32, Never>) {
        queue.async { [self] in
            self.continuation = continuation
            for number in [SIGTERM, SIGINT] {
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
                source.setEventHandler { [self] in
                    let waiting = self.continuation
                    self.continuation = nil
                    waiting?.resume(returning: number)
                }
                source.resume()
                sources.append(source)
            }
        }
    }
}
