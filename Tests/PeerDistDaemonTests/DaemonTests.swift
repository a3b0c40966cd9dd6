import Foundation
import ServerTesting
import Testing

/// Runs the built `peerdistd` as an operator would.
@Suite(.serialized) struct DaemonTests {
    /// The daemon binary, next to the test bundle in the build folder.
    static var binary: URL {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("peerdistd")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("peerdistd")
    }

    final class Daemon: @unchecked Sendable {
        let process = Process()
        let stdout = Pipe()
        let stderr = Pipe()
        var port = 0

        init(_ arguments: [String], environment: [String: String] = [:]) throws {
            configure(arguments, environment: environment)
            try process.run()
        }

        /// Prepared but not started: the caller adjusts `process` and runs it.
        init(unstarted: Void) { configure([], environment: [:]) }

        private func configure(_ arguments: [String], environment: [String: String]) {
            process.executableURL = DaemonTests.binary
            process.arguments = arguments
            var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PEERDIST_") }
            env.merge(environment) { $1 }
            process.environment = env
            process.standardOutput = stdout
            process.standardError = stderr
        }

        /// Waits for the first stdout line and returns it. Blocking reads run on a thread of their
        /// own, never on the test process's few cooperative threads, which other tests need.
        func firstLine() async -> String {
            let text = await DaemonTests.offPool { [self] in
                var line: [UInt8] = []
                let handle = stdout.fileHandleForReading
                while true {
                    let byte = handle.readData(ofLength: 1)
                    if byte.isEmpty || byte[0] == 10 { break }
                    line.append(byte[0])
                }
                return String(decoding: line, as: UTF8.self)
            }
            port = Int(text.split(separator: ":").last ?? "") ?? 0
            return text
        }

        func waitExit() async -> Int32 {
            await DaemonTests.offPool { [self] in
                process.waitUntilExit()
                return process.terminationStatus
            }
        }

        func errorText() async -> String {
            await DaemonTests.offPool { [self] in String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) }
        }
    }

    /// Runs a blocking call on a thread of its own.
    static func offPool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: body()) }.start()
        }
    }

    /// Writes `text` to `path`, private to the owner (0600), as the daemon wants its tokens and
    /// configuration files.
    static func writePrivate(_ text: String, to path: String, mode: Int = 0o600) throws {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
    }

    static func tempDir() -> String {
        let dir = NSTemporaryDirectory() + "peerdist-test-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        return dir
    }

    @Test(arguments: [
        (["--port", "70000"], [String: String]()),
        (["--port", "abc"], [:]),
        (["--header-timeout", "-1"], [:]),
        (["--idle-timeout", "soon"], [:]),
        (["--log-level", "loud"], [:]),
        (["--no-such-flag"], [:]),
        ([], ["PEERDIST_PORT": "eighty"]),
        ([], ["PEERDIST_BODY_TIMEOUT": "nan"]),
        ([], ["PEERDIST_MAX_CONNECTIONS": "0"]),
        (["--log-format", "xml"], [:]),
        (["--clock", "fast"], [:]),
        (["--clock", "manual", "--host", "0.0.0.0"], [:]),
        (["--clock", "manual", "--host", "::"], [:]),
        ([], ["PEERDIST_CLOCK": "manual", "PEERDIST_HOST": "10.0.0.1"]),
        ([], ["PEERDIST_CONFIG": "/nonexistent/peerdist.conf"]),
        (["--cache-size", "0"], [:]),
        (["--cache-size", "-1"], [:]),
        ([], ["PEERDIST_CACHE_SIZE": "1G"]),
        (["--cache-share", "0"], [:]),
        ([], ["PEERDIST_CACHE_SHARE": "half"]),
        // The global instance cap below 4 x the per-principal one: a few principals could take it all.
        (["--max-instances", "100", "--max-instances-per-principal", "50"], [:]),
        (["--max-memory-per-principal", "1000"], [:]),
        (["--metrics-token", "too-short"], [:]),
    ])
    func invalidConfigurationExitsWithStatus2BeforeBinding(arguments: [String], environment: [String: String]) async throws {
        let d = try Daemon(arguments + ["--data-dir", Self.tempDir()], environment: environment)
        #expect(await d.waitExit() == 2)
        #expect(await !d.errorText().isEmpty)
        #expect(await d.firstLine() == "")
    }

    @Test func configFileErrorsExitWithStatus2() async throws {
        let dir = Self.tempDir()
        for (content, fragment) in [("no-such-key = 1\n", "unknown key 'no-such-key'"), ("idle-timeout = later\n", "idle-timeout"),
                                    ("port 80\n", "expected 'key = value'"),
                                    ("cache-size = lots\n", "'cache-size' in the configuration file must be an integer")] {
            let path = dir + "/peerdist.conf"
            try Self.writePrivate(content, to: path)
            let d = try Daemon(["--config", path, "--data-dir", dir])
            #expect(await d.waitExit() == 2)
            #expect(await d.errorText().contains(fragment))
        }
    }

    /// Flag over environment over file over default.
    @Test func configFilePrecedence() async throws {
        let dir = Self.tempDir()
        let path = dir + "/peerdist.conf"
        try Self.writePrivate("# settings\nport = 0\nhost = 127.0.0.1\ndata-dir = \(dir)\nmax-wait = 1000\ncache-size = 2097152\n", to: path)
        let d = try Daemon(["--config", path], environment: ["PEERDIST_MAX_WAIT": "2000"])
        #expect(await d.firstLine().hasPrefix("listening on 127.0.0.1:"))
        let c = try await RawHTTPClient.connect(port: d.port)
        let h = try #require(try await c.request("POST", "/instances", json: "{}").json["handle"] as? String)
        // max-wait from the environment (2 s) caps a 20 s long-poll.
        let started = ContinuousClock.now
        let r = try await c.request("GET", "/instances/\(h)/ports/default/completions?timeoutMs=20000")
        let waited = ContinuousClock.now - started
        #expect(r.json["timedOut"] as? Bool == true)
        #expect(waited >= .milliseconds(1_900) && waited < .seconds(10))
        d.process.terminate()
        #expect(await d.waitExit() == 0)
    }

    /// Without --max-instances the global instance cap follows --max-instances-per-principal (4 x
    /// 300); /healthz reports it, and --max-instances below that is refused, naming the rule.
    @Test func theInstanceCapIsAtLeastFourPrincipalsWorth() async throws {
        let d = try Daemon(["--port", "0", "--data-dir", Self.tempDir(), "--max-instances-per-principal", "300"])
        #expect(await d.firstLine().hasPrefix("listening on"))
        let c = try await RawHTTPClient.connect(port: d.port)
        let health = try await c.request("GET", "/healthz")
        let instances = try #require(health.json["instances"] as? [String: Any], "\(health.text)")
        #expect(instances["max"] as? Int == 1_200)
        #expect(instances["open"] as? Int == 0)
        #expect(instances["nearCap"] as? Bool == false)
        d.process.terminate()
        #expect(await d.waitExit() == 0)
        let refused = try Daemon(["--port", "0", "--data-dir", Self.tempDir(), "--max-instances", "1000", "--max-instances-per-principal", "300"])
        #expect(await refused.waitExit() == 2)
        #expect(await refused.errorText().contains("--max-instances must be at least 4 × --max-instances-per-principal (1200)"))
    }

    /// --clock manual refuses a non-loopback bind with a message naming the flag.
    @Test func manualClockNeedsALoopbackHost() async throws {
        let d = try Daemon(["--clock", "manual", "--host", "0.0.0.0", "--port", "0", "--data-dir", Self.tempDir()])
        #expect(await d.waitExit() == 2)
        #expect(await d.errorText().contains("--clock manual needs a loopback --host"))
    }

    /// --clock manual on ::1 or 127.0.0.0/8: a 30 s long-poll ends only when the clock is advanced
    /// past it, in milliseconds of real time; the system clock (the default) cannot be advanced.
    @Test func manualClockDrivesLongPolls() async throws {
        let d = try Daemon(["--clock", "manual", "--host", "127.0.0.1", "--port", "0", "--data-dir", Self.tempDir()])
        #expect(await d.firstLine().hasPrefix("listening on 127.0.0.1:"))
        let c = try await RawHTTPClient.connect(port: d.port)
        #expect(try await c.request("GET", "/admin/clock").text == #"{"mode":"manual","nowMs":0}"#)
        let h = try #require(try await c.request("POST", "/instances", json: "{}").json["handle"] as? String)
        let poller = try await RawHTTPClient.connect(port: d.port)
        let started = ContinuousClock.now
        try await poller.send("GET /instances/\(h)/ports/default/completions?timeoutMs=30000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        // Parked (the metrics gauge says so) before the clock moves.
        var parked = false
        for _ in 0..<500 where !parked {
            let metrics = try await c.request("GET", "/metrics").text
            parked = Self.parkedWaiters(metrics) == 1
            if !parked { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(parked)
        let almost = try await c.request("POST", "/admin/clock/advance", json: #"{"ms":29999}"#)
        #expect(almost.json["nowMs"] as? Int == 29_999)
        let metrics = try await c.request("GET", "/metrics").text
        #expect(Self.parkedWaiters(metrics) == 1, "not due yet")
        let due = try await c.request("POST", "/admin/clock/advance", json: #"{"ms":1}"#)
        #expect(due.json["nowMs"] as? Int == 30_000)
        let answer = try await poller.readResponse()
        #expect(answer.status == 200)
        #expect(answer.json["timedOut"] as? Bool == true)
        #expect(ContinuousClock.now - started < .seconds(10))
        d.process.terminate()
        #expect(await d.waitExit() == 0)

        let system = try Daemon(["--port", "0", "--data-dir", Self.tempDir()])
        #expect(await system.firstLine().hasPrefix("listening on 127.0.0.1:"))
        let s = try await RawHTTPClient.connect(port: system.port)
        #expect(try await s.request("GET", "/admin/clock").json["mode"] as? String == "system")
        let refused = try await s.request("POST", "/admin/clock/advance", json: #"{"ms":1}"#)
        #expect(refused.status == 409)
        #expect(refused.json["code"] as? Int == 50)
        system.process.terminate()
        #expect(await system.waitExit() == 0)
    }

    /// The `peerdist_parked_waiters` gauge of a /metrics text.
    static func parkedWaiters(_ metrics: String) -> Double? {
        metrics.split(separator: "\n").first { $0.hasPrefix("peerdist_parked_waiters ") }
            .flatMap { Double($0.dropFirst("peerdist_parked_waiters ".count)) }
    }

    /// --log-format json: one parseable line per request with its fields.
    @Test func jsonRequestLogLines() async throws {
        let d = try Daemon(["--port", "0", "--data-dir", Self.tempDir(), "--log-format", "json"])
        _ = await d.firstLine()
        let c = try await RawHTTPClient.connect(port: d.port)
        let health = try await c.request("GET", "/healthz", headers: [("X-Request-Id", "req-7")])
        #expect(health.status == 200)
        d.process.terminate()
        #expect(await d.waitExit() == 0)
        let lines = await d.errorText().split(separator: "\n")
        let objects = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(objects.count == lines.count, "every line is JSON")
        let request = try #require(objects.first { $0["request_id"] as? String == "req-7" })
        #expect(request["message"] as? String == "request")
        #expect(request["method"] as? String == "GET")
        #expect(request["route"] as? String == "/healthz")
        #expect(request["status"] as? String == "200")
        #expect(request["bytes"] as? String == String(health.body.count))
        #expect(Double(request["duration_ms"] as? String ?? "") != nil)
        #expect(request["level"] as? String == "info")
        #expect(objects.contains { $0["message"] as? String == "draining" })
    }

    /// Out of file descriptors (EMFILE), the server neither crashes nor spins, and it accepts
    /// again once descriptors are free.
    @Test func runningOutOfDescriptorsDoesNotSpin() async throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/prlimit") else { return }
        let d = Daemon(unstarted: ())
        d.process.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
        d.process.arguments = ["--nofile=48", Self.binary.path, "--port", "0", "--data-dir", Self.tempDir()]
        try d.process.run()
        _ = await d.firstLine()
        var clients: [RawHTTPClient] = []
        for _ in 0..<80 {
            if let c = try? await RawHTTPClient.connect(port: d.port) { clients.append(c) }
        }
        try await Task.sleep(for: .milliseconds(300))
        let cpuBefore = Self.cpuSeconds(pid: d.process.processIdentifier)
        try await Task.sleep(for: .seconds(1))
        let cpuSpent = Self.cpuSeconds(pid: d.process.processIdentifier) - cpuBefore
        #expect(cpuSpent < 0.3, "the server used \(cpuSpent) s of CPU in 1 s while out of descriptors")
        for c in clients { c.close() }
        let fresh = try await RawHTTPClient.connect(port: d.port)
        let r = try await fresh.request("GET", "/healthz", timeout: .seconds(5))
        #expect(r.status == 200)
        #expect(d.process.isRunning)
        d.process.terminate()
        #expect(await d.waitExit() == 0)
    }

    /// User plus system CPU time of a process, from /proc.
    static func cpuSeconds(pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        let ticks = (Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)
        return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    @Test func helpListsEverySetting() async throws {
        let d = try Daemon(["--help"])
        let text = await Self.offPool { String(decoding: d.stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) }
        #expect(await d.waitExit() == 0)
        // Named as the binary, not after the options type.
        #expect(text.contains("USAGE: peerdistd <options>"), "\(text.prefix(300))")
        for flag in ["--host", "--port", "--data-dir", "--max-connections", "--max-body-size", "--header-timeout",
                     "--body-timeout", "--idle-timeout", "--max-wait", "--drain-timeout", "--admin-token", "--log-level",
                     "--max-waiters", "--retention", "--secret-file", "--log-format", "--config", "--tokens-file", "--allow-anonymous",
                     "--clock", "--instance-idle-timeout", "--max-instances-per-principal", "--max-upload-bytes-per-principal",
                     "--too-many-requests-delay", "--cache-size", "--cache-share", "--admin-token-file", "--allowed-host",
                     "--auth-failures-before-delay"] {
            #expect(text.contains(flag), "\(flag) missing from --help")
        }
    }

    /// Configured by environment only, as the container runs it; SIGTERM drains with a
    /// request in flight and exits 0.
    @Test func environmentConfigurationAndGracefulDrain() async throws {
        let data = Self.tempDir()
        let d = try Daemon([], environment: ["PEERDIST_PORT": "0", "PEERDIST_DATA_DIR": data, "PEERDIST_MAX_WAIT": "30000"])
        let line = await d.firstLine()
        #expect(line.hasPrefix("listening on 127.0.0.1:"))
        let client = try await RawHTTPClient.connect(port: d.port)
        let h = try #require(try await client.request("POST", "/instances", json: "{}").json["handle"] as? String)
        let poller = try await RawHTTPClient.connect(port: d.port)
        try await poller.send("GET /instances/\(h)/ports/default/completions?timeoutMs=25000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        try await Task.sleep(for: .milliseconds(200))
        let started = ContinuousClock.now
        d.process.terminate()
        let answer = try await poller.readResponse()
        #expect(answer.status == 200)
        #expect(answer.json["timedOut"] as? Bool == true)
        #expect(await d.waitExit() == 0)
        #expect(ContinuousClock.now - started < .seconds(5))
        let mode = try FileManager.default.attributesOfItem(atPath: data + "/server-secret")[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    /// The secret survives kill -9: the same content gives the same content information (so
    /// the same Kp and HoHoDk) after a restart.
    @Test func secretSurvivesKillAndRestart() async throws {
        let data = Self.tempDir()
        func publishAndRead() async throws -> [UInt8] {
            let d = try Daemon(["--port", "0", "--data-dir", data])
            _ = await d.firstLine()
            defer {
                kill(d.process.processIdentifier, SIGKILL)
                d.process.waitUntilExit()
            }
            let c = try await RawHTTPClient.connect(port: d.port)
            let h = try #require(try await c.request("POST", "/instances", json: "{}").json["handle"] as? String)
            let s = try #require(try await c.request("POST", "/instances/\(h)/content/Zm9v/streams", json: #"{"version":2}"#).json["stream"] as? String)
            _ = try await c.request("POST", "/instances/\(h)/content/Zm9v/streams/\(s)/data", body: Array(repeating: 42, count: 100_000), headers: [("Prefer", "wait=10")])
            _ = try await c.request("POST", "/instances/\(h)/content/Zm9v/streams/\(s)/complete", headers: [("Prefer", "wait=10")])
            let v1 = try await c.request("GET", "/instances/\(h)/content/Zm9v/contentinfo?version=1")
            let v2 = try await c.request("GET", "/instances/\(h)/content/Zm9v/contentinfo?version=2")
            #expect(v1.status == 200)
            #expect(v2.status == 200)
            return v1.body + v2.body
        }
        let first = try await publishAndRead()
        let second = try await publishAndRead()
        #expect(first.count > 200)
        #expect(first == second)
        // A different data directory means a different secret, hence different segment secrets.
        let other = Self.tempDir()
        let d = try Daemon(["--port", "0", "--data-dir", other])
        _ = await d.firstLine()
        kill(d.process.processIdentifier, SIGKILL)
        _ = await d.waitExit()
        let a = FileManager.default.contents(atPath: data + "/server-secret")
        let b = FileManager.default.contents(atPath: other + "/server-secret")
        #expect(a != nil && b != nil && a != b)
    }

    /// A secret that group or others may read is refused with a clear message, before binding.
    @Test func dataDirectoryReadableByOthersIsRefused() async throws {
        let data = Self.tempDir()
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: data)
        let d = try Daemon(["--port", "0", "--data-dir", data])
        #expect(await d.waitExit() == 2)
        let text = await d.errorText()
        #expect(text.contains("data directory") && text.contains("group or others") && text.contains("chmod 700"), "\(text)")
        #expect(await d.firstLine() == "")
        #expect(!FileManager.default.fileExists(atPath: data + "/server-secret"))
    }

    @Test func secretFileReadableByOthersIsRefused() async throws {
        let data = Self.tempDir()
        let path = data + "/server-secret"
        #expect(FileManager.default.createFile(atPath: path, contents: Data(repeating: 7, count: 32), attributes: [.posixPermissions: 0o644]))
        let d = try Daemon(["--port", "0", "--data-dir", data])
        #expect(await d.waitExit() == 2)
        let text = await d.errorText()
        #expect(text.contains("secret file") && text.contains("644") && text.contains("chmod 600"), "\(text)")
        #expect(await d.firstLine() == "")
        // The operator's --secret-file is held to the same rule.
        let given = Self.tempDir() + "/key"
        #expect(FileManager.default.createFile(atPath: given, contents: Data(repeating: 7, count: 32), attributes: [.posixPermissions: 0o640]))
        let e = try Daemon(["--port", "0", "--data-dir", Self.tempDir(), "--secret-file", given])
        #expect(await e.waitExit() == 2)
        #expect(await e.errorText().contains("group or others"))
    }

    @Test func secretFileShorterThan16BytesIsRefused() async throws {
        let short = Self.tempDir() + "/key"
        #expect(FileManager.default.createFile(atPath: short, contents: Data(repeating: 1, count: 15), attributes: [.posixPermissions: 0o600]))
        let d = try Daemon(["--port", "0", "--data-dir", Self.tempDir(), "--secret-file", short])
        #expect(await d.waitExit() == 2)
        let text = await d.errorText()
        #expect(text.contains("16") && text.contains("15"), "\(text)")
        #expect(await d.firstLine() == "")
        // 16 bytes, private: accepted.
        let enough = Self.tempDir() + "/key"
        #expect(FileManager.default.createFile(atPath: enough, contents: Data(repeating: 1, count: 16), attributes: [.posixPermissions: 0o600]))
        let ok = try Daemon(["--port", "0", "--data-dir", Self.tempDir(), "--secret-file", enough])
        #expect(await ok.firstLine().hasPrefix("listening on"))
        kill(ok.process.processIdentifier, SIGKILL)
        _ = await ok.waitExit()
    }

    /// kill -9 in the middle of publishing (an append in flight), then a restart on the same data
    /// directory: the same server secret, and identical content information for a republication.
    @Test func killDuringAnAppendKeepsTheSecretAndTheContentInformation() async throws {
        let data = Self.tempDir()
        let content = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        func publish(_ c: RawHTTPClient, _ h: String, _ id: String) async throws -> [UInt8] {
            let s = try #require(try await c.request("POST", "/instances/\(h)/content/\(id)/streams", json: #"{"version":2}"#).json["stream"] as? String)
            let append = try await c.request("POST", "/instances/\(h)/content/\(id)/streams/\(s)/data", body: content, headers: [("Prefer", "wait=10")])
            #expect(append.json["state"] as? String == "completed", "\(append.text)")
            let complete = try await c.request("POST", "/instances/\(h)/content/\(id)/streams/\(s)/complete", headers: [("Prefer", "wait=10")])
            #expect(complete.json["state"] as? String == "completed", "\(complete.text)")
            let v1 = try await c.request("GET", "/instances/\(h)/content/\(id)/contentinfo?version=1")
            let v2 = try await c.request("GET", "/instances/\(h)/content/\(id)/contentinfo?version=2")
            #expect(v1.status == 200 && v2.status == 200)
            return v1.body + v2.body
        }

        let first = try Daemon(["--port", "0", "--data-dir", data])
        #expect(await first.firstLine().hasPrefix("listening on"))
        let secretBefore = FileManager.default.contents(atPath: data + "/server-secret")
        let c = try await RawHTTPClient.connect(port: first.port)
        let h = try #require(try await c.request("POST", "/instances", json: "{}").json["handle"] as? String)
        let before = try await publish(c, h, "Zm9v")
        // A second publication with an append in flight: half its body sent, then kill -9.
        let s = try #require(try await c.request("POST", "/instances/\(h)/content/YmFy/streams", json: #"{"version":2}"#).json["stream"] as? String)
        let uploader = try await RawHTTPClient.connect(port: first.port)
        try await uploader.send(Array("POST /instances/\(h)/content/YmFy/streams/\(s)/data?op=inflight HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: \(content.count)\r\n\r\n".utf8)
                                + content.prefix(content.count / 2))
        var pending = false
        for _ in 0..<200 where !pending {
            let op = try await c.request("GET", "/instances/\(h)/operations/inflight")
            pending = op.json["state"] as? String == "pending"
            if !pending { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(pending)
        kill(first.process.processIdentifier, SIGKILL)
        #expect(await first.waitExit() == SIGKILL)
        uploader.close()

        let second = try Daemon(["--port", "0", "--data-dir", data])
        #expect(await second.firstLine().hasPrefix("listening on"))
        defer {
            kill(second.process.processIdentifier, SIGKILL)
            second.process.waitUntilExit()
        }
        #expect(FileManager.default.contents(atPath: data + "/server-secret") == secretBefore)
        #expect(!FileManager.default.fileExists(atPath: data + "/server-secret.tmp"))
        let c2 = try await RawHTTPClient.connect(port: second.port)
        let h2 = try #require(try await c2.request("POST", "/instances", json: "{}").json["handle"] as? String)
        let after = try await publish(c2, h2, "Zm9v")
        #expect(before.count > 200)
        #expect(after == before)
        // The publication that was cut is simply gone: republishing it works.
        let again = try await publish(c2, h2, "YmFy")
        #expect(again.count == before.count)
    }
}
