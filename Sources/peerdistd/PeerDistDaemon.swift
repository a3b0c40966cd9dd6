import ArgumentParser
import CSystemShims
import Dispatch
import HTTPServer
import Logging
import PeerDistAPI

#if canImport(Glibc)
import Glibc
#endif

/// The process: parse settings (exit 2 on a bad one, before binding), bind, print
/// `listening on HOST:PORT` as the first stdout line, serve, and drain on SIGTERM/SIGINT.
@main
enum PeerDistDaemon {
    static func main() async {
        // A log reader that goes away must not kill the server: writes to a closed stderr fail
        // with EPIPE instead (sockets already use MSG_NOSIGNAL).
        signal(SIGPIPE, SIG_IGN)
        // Everything the service creates (the secret, the cache's index and packs, their
        // directories) is its own: nothing for group or others, whatever the caller's umask.
        umask(0o077)
        // The data path allocates and frees buffers of about 1 MiB all the time (AddData windows,
        // read buffers). glibc maps each afresh and unmaps it when freed, so every page is faulted
        // in again: 10-15 % of an AddData's or a read's CPU in perf. Below 4 MiB they come from
        // the heap instead, and up to 32 MiB of freed heap is kept for reuse.
        _ = peerdist_set_malloc_thresholds(4 << 20, 32 << 20)
        let resolved: DaemonOptions.Resolved
        do {
            let options = try DaemonOptions.parse()
            let environment = currentEnvironment()
            let file = try ConfigFile.load(path: options.config ?? environment["PEERDIST_CONFIG"])
            resolved = try options.resolve(environment: environment, file: file)
        } catch {
            let code = DaemonOptions.exitCode(for: error)
            if code == .success { DaemonOptions.exit(withError: error) }
            writeStderr(DaemonOptions.fullMessage(for: error) + "\n")
            exit(2)
        }
        let level = resolved.logLevel
        let format = resolved.logFormat
        LoggingSystem.bootstrap { label in
            var handler = LineLogHandler(label: label, format: format)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "peerdistd")
        let exitCode = await Daemon(resolved: resolved, logger: logger).run()
        LogOutput.shared.flush()
        exit(exitCode)
    }

    private static func currentEnvironment() -> [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let eq = text.firstIndex(of: "=") {
                result[String(text[..<eq])] = String(text[text.index(after: eq)...])
            }
            pointer += 1
        }
        return result
    }
}

/// Writes to standard error without buffering.
func writeStderr(_ text: String) {
    LogOutput.shared.flush()
    LogLineWriter.writeNow(Array(text.utf8), waitingAtMost: .seconds(1))
}

/// Writes a line to standard output and flushes it (harnesses wait for it).
func writeStdoutLine(_ text: String) {
    var bytes = Array((text + "\n").utf8)
    _ = bytes.withUnsafeMutableBytes { write(1, $0.baseAddress, $0.count) }
}
