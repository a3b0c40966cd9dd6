import Foundation
import ServerTesting
import Testing

/// The process's own robustness: signals at start-up, and a standard error that stops draining.
/// In DaemonTests' serialized suite: these block on the daemon's pipes, and two suites doing so
/// at once would hold both of the test process's cooperative threads.
extension DaemonTests {
    /// SIGTERM sent the instant `listening on` is read drains and exits 0, every time: the
    /// handlers are installed before the line is printed.
    @Test func sigtermRightAfterListeningDrains() async throws {
        let dir = Self.tempDir()
        for attempt in 0..<25 {
            let d = try Daemon(["--port", "0", "--data-dir", dir, "--log-level", "warning"])
            #expect(await d.firstLine().hasPrefix("listening on"))
            d.process.terminate()
            let status = await d.waitExit()
            #expect(status == 0 && d.process.terminationReason == .exit, "attempt \(attempt): status \(status)")
            if status != 0 { break }
        }
    }

    /// A standard error nobody reads (a full pipe) never stalls request handling: log lines
    /// past the buffer are dropped and counted in `peerdist_log_lines_dropped_total`.
    @Test func blockedStandardErrorDropsLinesAndKeepsServing() async throws {
        let d = try Daemon(["--port", "0", "--data-dir", Self.tempDir()])
        _ = await d.firstLine()
        let c = try await RawHTTPClient.connect(port: d.port)
        // Far more lines than the pipe (64 KiB) and the log buffer (8,192 lines) hold.
        let batch = String(repeating: "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", count: 500)
        for _ in 0..<30 {
            try await c.send(batch)
            for _ in 0..<500 { #expect(try await c.readResponse(timeout: .seconds(5)).status == 200) }
        }
        let metrics = try await c.request("GET", "/metrics").text
        let dropped = metrics.split(separator: "\n").first { $0.hasPrefix("peerdist_log_lines_dropped_total") }
        let count = dropped.flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
        #expect(count > 0, "dropped: \(dropped ?? "absent")")
        // SIGTERM drains and exits although stderr still does not drain.
        d.process.terminate()
        let until = Date().addingTimeInterval(15)
        while d.process.isRunning && Date() < until { try await Task.sleep(for: .milliseconds(20)) }
        #expect(!d.process.isRunning)
        if d.process.isRunning { _ = await d.errorText() }
        #expect(await d.waitExit() == 0)
    }

    /// A log reader that goes away (EPIPE on stderr) does not kill the server.
    @Test func closedStandardErrorDoesNotKillTheServer() async throws {
        let d = try Daemon(["--port", "0", "--data-dir", Self.tempDir()])
        _ = await d.firstLine()
        try d.stderr.fileHandleForReading.close()
        let c = try await RawHTTPClient.connect(port: d.port)
        for _ in 0..<50 { #expect(try await c.request("GET", "/healthz").status == 200) }
        #expect(d.process.isRunning)
        d.process.terminate()
        #expect(await d.waitExit() == 0)
    }
}
