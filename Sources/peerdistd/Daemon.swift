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
        let lifecycle = ServiceLifecycle()
        let service: PeerDistService
        do {
            var limits = EngineLimits()
            limits.maxWaitersPerPort = resolved.maxWaiters
            limits.retention = resolved.retention
            service = try PeerDistService(
                settings: .init(
                    dataDirectory: resolved.dataDir, maxWaitMs: resolved.maxWaitMs, adminToken: resolved.adminToken,
                    secretFile: resolved.secretFile, limits: limits,
                    requestLog: { LogOutput.shared.enqueue(.request($0)) },
                    manualClock: resolved.clock == .manual ? ManualClock(startDate: Date()) : nil),
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

/// Turns SIGTERM/SIGINT into one resumption. `install()` puts a sigaction handler in place
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

    /// Catches SIGTERM and SIGINT from now on.
    func install() {
        queue.sync {
            guard source == nil else { return }
            var fd: Int32 = -1
            for number in [SIGTERM, SIGINT] { fd = peerdist_catch_signal(number) }
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

    private func deliver(_ number: Int32) {
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
