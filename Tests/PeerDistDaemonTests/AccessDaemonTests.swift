import Foundation
import ServerTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Tokens and safe defaults as the operator meets them: the real binary, its exit status, its
/// log, SIGHUP.
@Suite(.serialized) struct AccessDaemonTests {
    typealias Daemon = DaemonTests.Daemon

    static let alice = "alice-token-0123456789"
    static let bob = "bob-token-0123456789ab"
    static let admin = "admin-token-0123456789"

    /// A file of `text`, private to the owner (0600) unless `mode` says otherwise.
    static func tokensFile(_ text: String, name: String = "tokens", mode: Int = 0o600) throws -> String {
        let path = DaemonTests.tempDir() + "/" + name
        try DaemonTests.writePrivate(text, to: path, mode: mode)
        return path
    }

    /// Reads stderr until a line containing `fragment` arrives (or the stream ends); returns all
    /// that was read. Runs on a thread of its own.
    static func readStderr(_ d: Daemon, until fragment: String) async -> String {
        await DaemonTests.offPool {
            var text = ""
            let handle = d.stderr.fileHandleForReading
            while !text.contains(fragment) {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                text += String(decoding: chunk, as: UTF8.self)
            }
            return text
        }
    }

    /// A daemon expected to refuse to start: its exit status and stderr. One that starts anyway
    /// (it prints `listening on`) is killed, so that the test fails instead of waiting for it.
    static func refusal(_ d: Daemon) async -> (status: Int32, text: String) {
        if await d.firstLine() != "" { kill(d.process.processIdentifier, SIGKILL) }
        return (await d.waitExit(), await d.errorText())
    }

    static func status(_ c: RawHTTPClient, _ token: String?, _ path: String = "/instances") async throws -> Int {
        try await c.request("GET", path, headers: token.map { [("Authorization", "Bearer \($0)")] } ?? []).status
    }

    /// A non-loopback bind without a tokens file, or without an admin token, exits 2 before
    /// binding and says what to do; with both, or with --allow-anonymous, it starts.
    @Test func nonLoopbackBindWithoutTokensRefusesToStart() async throws {
        let tokens = try Self.tokensFile("alice \(Self.alice)\n")
        for (arguments, environment, missing) in [
            (["--host", "0.0.0.0"], [String: String](), "--tokens-file and --admin-token"),
            (["--host", "0.0.0.0", "--admin-token", Self.admin], [:], "--tokens-file"),
            (["--host", "::", "--tokens-file", tokens], [:], "--admin-token"),
            ([], ["PEERDIST_HOST": "0.0.0.0", "PEERDIST_TOKENS_FILE": tokens], "--admin-token"),
        ] {
            let d = try Daemon(arguments + ["--port", "0", "--data-dir", DaemonTests.tempDir()], environment: environment)
            #expect(await d.waitExit() == 2, "\(arguments) \(environment)")
            let text = await d.errorText()
            #expect(text.contains("not a loopback address") && text.contains(missing) && text.contains("--allow-anonymous"), "\(text)")
            #expect(await d.firstLine() == "")
        }
        // A bad tokens file is a configuration error too, and names the line, not the token.
        let bad = try Self.tokensFile("alice \(Self.alice)\nbob\n")
        let d = try Daemon(["--port", "0", "--data-dir", DaemonTests.tempDir(), "--tokens-file", bad])
        #expect(await d.waitExit() == 2)
        let text = await d.errorText()
        #expect(text.contains("line 2") && !text.contains(Self.alice), "\(text)")
        // Allowed: tokens and an admin token, or the explicit opt-out (environment or flag).
        for (arguments, environment) in [
            (["--host", "0.0.0.0", "--tokens-file", tokens, "--admin-token", Self.admin], [String: String]()),
            (["--host", "0.0.0.0", "--allow-anonymous"], [:]),
            (["--host", "0.0.0.0"], ["PEERDIST_ALLOW_ANONYMOUS": "true"]),
        ] {
            let d = try Daemon(arguments + ["--port", "0", "--data-dir", DaemonTests.tempDir()], environment: environment)
            let line = await d.firstLine()
            #expect(line.hasPrefix("listening on 0.0.0.0:"), "\(arguments): \(line)")
            kill(d.process.processIdentifier, SIGKILL)
            _ = await d.waitExit()
        }
    }

    /// SIGHUP reloads the tokens file on the connections already open; a bad file is refused
    /// with a log line and the tokens in use stay. No token ever appears in the log; request
    /// lines name the principal.
    @Test func sighupReloadsTheTokensFile() async throws {
        let path = try Self.tokensFile("alice \(Self.alice)\n")
        let d = try Daemon(["--port", "0", "--data-dir", DaemonTests.tempDir(), "--tokens-file", path,
                            "--admin-token", Self.admin, "--log-format", "json"])
        #expect(await d.firstLine().hasPrefix("listening on 127.0.0.1:"))
        let c = try await RawHTTPClient.connect(port: d.port)
        #expect(try await Self.status(c, Self.alice) == 200)
        #expect(try await Self.status(c, Self.bob) == 401)
        #expect(try await Self.status(c, nil, "/healthz") == 200)
        #expect(try await c.request("POST", "/instances", headers: [("Authorization", "Bearer \(Self.alice)")]).status == 201)

        // A good file: Bob in, Alice out, on the same connection.
        try DaemonTests.writePrivate("# rotated\nbob \(Self.bob)\n", to: path)
        kill(d.process.processIdentifier, SIGHUP)
        var log = await Self.readStderr(d, until: "tokens reloaded")
        #expect(log.contains("tokens reloaded"))
        #expect(try await Self.status(c, Self.bob) == 200)
        #expect(try await Self.status(c, Self.alice) == 401)
        // Alice's instance went with her (issue 18, item 8).
        #expect(log.contains(#""instances_shut_down":"1""#), "\(log)")

        // A bad file: refused, Bob stays.
        try DaemonTests.writePrivate("bob \(Self.bob)\nbob \(Self.alice)\n", to: path)
        kill(d.process.processIdentifier, SIGHUP)
        log += await Self.readStderr(d, until: "tokens reload refused")
        #expect(log.contains("tokens reload refused") && log.contains("line 2"), "\(log)")
        #expect(try await Self.status(c, Self.bob) == 200)
        #expect(try await Self.status(c, Self.alice) == 401)
        // A missing file: refused too.
        try FileManager.default.removeItem(atPath: path)
        kill(d.process.processIdentifier, SIGHUP)
        log += await Self.readStderr(d, until: "cannot read the tokens file")
        #expect(try await Self.status(c, Self.bob) == 200)
        c.close()

        #expect(d.process.isRunning)
        d.process.terminate()
        #expect(await d.waitExit() == 0)
        log += await d.errorText()
        for token in [Self.alice, Self.bob, Self.admin] {
            #expect(!log.contains(token), "a token was logged")
        }
        let objects = log.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let requests = objects.filter { $0["message"] as? String == "request" }
        #expect(requests.contains { $0["principal"] as? String == "bob" && $0["status"] as? String == "200" })
        #expect(requests.contains { $0["principal"] as? String == "alice" && $0["status"] as? String == "200" })
        #expect(requests.contains { $0["principal"] as? String == "-" && $0["status"] as? String == "401" })
    }

    /// The admin token from a file: refused (exit 2) when group or others may read it, when it is
    /// shorter than 16 bytes, or given twice; a private one guards /admin/*. `--admin-token` on
    /// the command line starts with a warning; a tokens file without an admin token says in the
    /// start-up line that /admin/* is closed (issue 18, item 5).
    @Test func adminTokenFileAndTheStartupLog() async throws {
        let tokens = try Self.tokensFile("alice \(Self.alice)\n")
        for (file, fragment) in [(try Self.tokensFile("\(Self.admin)\n", name: "admin", mode: 0o644), "chmod 600"),
                                 (try Self.tokensFile("short-token\n", name: "admin"), "at least 16 bytes"),
                                 (try Self.tokensFile("\n", name: "admin"), "is empty")] {
            let d = try Daemon(["--port", "0", "--data-dir", DaemonTests.tempDir(), "--tokens-file", tokens, "--admin-token-file", file])
            let (status, text) = await Self.refusal(d)
            #expect(status == 2, "\(fragment)")
            #expect(text.contains(fragment) && !text.contains(Self.admin), "\(text)")
        }
        let both = try Daemon(["--port", "0", "--data-dir", DaemonTests.tempDir(), "--admin-token", Self.admin,
                               "--admin-token-file", try Self.tokensFile("\(Self.admin)\n", name: "admin")])
        #expect(await Self.refusal(both).status == 2)

        let file = try Self.tokensFile("\(Self.admin)\n", name: "admin")
        let d = try Daemon(["--port", "0", "--data-dir", DaemonTests.tempDir(), "--tokens-file", tokens, "--admin-token-file", file])
        #expect(await d.firstLine().hasPrefix("listening on 127.0.0.1:"))
        let c = try await RawHTTPClient.connect(port: d.port)
        #expect(try await Self.status(c, Self.admin, "/admin/policy") == 200)
        #expect(try await Self.status(c, Self.alice, "/admin/policy") == 403)
        c.close()
        d.process.terminate()
        #expect(await d.waitExit() == 0)
        let quiet = await d.errorText()
        #expect(!quiet.contains("process list") && quiet.contains("admin=admin token"), "\(quiet)")

        // On the command line: a warning. A tokens file and no admin token: the start-up line says /admin/* is closed.
        for (arguments, fragment) in [(["--admin-token", Self.admin], "visible in the process list"), ([], "admin=closed")] {
            let d = try Daemon(["--port", "0", "--data-dir", DaemonTests.tempDir(), "--tokens-file", tokens] + arguments)
            #expect(await d.firstLine().hasPrefix("listening on 127.0.0.1:"))
            d.process.terminate()
            #expect(await d.waitExit() == 0)
            let text = await d.errorText()
            #expect(text.contains(fragment), "\(arguments): \(text)")
        }
    }

    /// The tokens file and the configuration file are refused (exit 2) when group or others may
    /// read or write them, and so is a data directory they may reach even with --secret-file; a
    /// tokens file made readable later is refused on SIGHUP and the tokens in use stay. What the
    /// daemon creates is private whatever its caller's umask (issue 18, item 7).
    @Test func filesAreCheckedAndCreatedPrivate() async throws {
        let loose = try Self.tokensFile("alice \(Self.alice)\n", mode: 0o644)
        let (s1, t1) = await Self.refusal(try Daemon(["--port", "0", "--data-dir", DaemonTests.tempDir(), "--tokens-file", loose]))
        #expect(s1 == 2)
        #expect(t1.contains("tokens file") && t1.contains("644") && t1.contains("chmod 600"), "\(t1)")
        let config = try Self.tokensFile("port = 0\n", name: "peerdist.conf", mode: 0o640)
        let (s2, t2) = await Self.refusal(try Daemon(["--config", config, "--data-dir", DaemonTests.tempDir()]))
        #expect(s2 == 2)
        #expect(t2.contains("configuration file") && t2.contains("640"), "\(t2)")
        let key = try Self.tokensFile(String(repeating: "k", count: 32), name: "key")
        let open = DaemonTests.tempDir()
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: open)
        let (s3, t3) = await Self.refusal(try Daemon(["--port", "0", "--data-dir", open, "--secret-file", key]))
        #expect(s3 == 2)
        #expect(t3.contains("data directory") && t3.contains("chmod 700"), "\(t3)")

        // Started with umask 022 inherited: the data directory it creates, the secret, the cache's
        // folder and index are private.
        let data = DaemonTests.tempDir() + "/nested/data"
        let tokens = try Self.tokensFile("alice \(Self.alice)\n")
        let d = Daemon(unstarted: ())
        d.process.arguments = ["--port", "0", "--data-dir", data, "--tokens-file", tokens]
        let previous = umask(0o022)
        try d.process.run()
        umask(previous)
        #expect(await d.firstLine().hasPrefix("listening on"))
        func mode(_ path: String) -> Int? {
            var info = stat()
            guard lstat(path, &info) == 0 else { return nil }
            return Int(info.st_mode & 0o777)
        }
        for (path, expected) in [(data, 0o700), (data + "/server-secret", 0o600), (data + "/cache", 0o700), (data + "/cache/index.sqlite", 0o600)] {
            #expect(mode(path) == expected, "\(path): \(String(mode(path) ?? -1, radix: 8))")
        }
        // Made readable by others while running: a reload refuses it, Alice stays.
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: tokens)
        kill(d.process.processIdentifier, SIGHUP)
        // ("tokens reload" ends the wait whether it was refused or not.)
        let log = await Self.readStderr(d, until: "tokens reload")
        #expect(log.contains("tokens reload refused") && log.contains("chmod 600"), "\(log)")
        let c = try await RawHTTPClient.connect(port: d.port)
        #expect(try await Self.status(c, Self.alice) == 200)
        c.close()
        d.process.terminate()
        #expect(await d.waitExit() == 0)
    }

    /// Without a tokens file, SIGHUP neither kills the daemon nor changes anything.
    @Test func sighupWithoutTokensFileIsHarmless() async throws {
        let d = try Daemon(["--port", "0", "--data-dir", DaemonTests.tempDir()])
        _ = await d.firstLine()
        kill(d.process.processIdentifier, SIGHUP)
        _ = await Self.readStderr(d, until: "nothing to reload")
        let c = try await RawHTTPClient.connect(port: d.port)
        #expect(try await Self.status(c, nil) == 200)
        c.close()
        #expect(d.process.isRunning)
        d.process.terminate()
        #expect(await d.waitExit() == 0)
    }
}
