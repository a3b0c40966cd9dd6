import Foundation
import HTTPServer
import HTTPWire
import ServerTesting
import Testing

/// HTTP/2 cleartext over real sockets: the same answers as HTTP/1.1 (curl with prior knowledge,
/// curl with `Upgrade: h2c`, nghttp, and `H2Client`), long-polls multiplexed on one connection,
/// resets, floods and gzip both ways.
@Suite struct HTTP2Tests {
    /// One answer, whatever the protocol and the tool.
    struct Answer: CustomStringConvertible {
        var status: Int
        var contentType: String?
        var contentEncoding: String?
        var body: [UInt8]
        var protocolLine = ""
        var text: String { String(decoding: body, as: UTF8.self) }
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:] }
        var description: String { "\(status) \(contentType ?? "-") \(text.prefix(300))" }
    }

    enum Tool: String { case priorKnowledge, upgrade, nghttp, client }

    // MARK: - External tools

    /// Runs a program to its end (each tool is given its own timeout too); returns its stdout.
    static func run(_ program: String, _ arguments: [String], timeout: Duration = .seconds(20)) async throws -> (status: Int32, out: [UInt8], err: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        let done = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in done.signal() }
        try process.run()
        // Read both pipes to their end on threads of their own, so a big output never blocks the tool.
        let outData = Box(), errData = Box()
        let readers = DispatchGroup()
        for (pipe, box) in [(out, outData), (err, errData)] {
            readers.enter()
            Thread { box.data = pipe.fileHandleForReading.readDataToEndOfFile(); readers.leave() }.start()
        }
        let finished: Bool = await withCheckedContinuation { c in
            Thread {
                let seconds = Double(timeout.components.seconds)
                let ok = done.wait(timeout: .now() + seconds) == .success
                if !ok { process.terminate() }
                _ = readers.wait(timeout: .now() + 5)
                c.resume(returning: ok)
            }.start()
        }
        guard finished else { throw H2Client.ClientError.timedOut("\(program) \(arguments)") }
        return (process.terminationStatus, Array(outData.data), String(decoding: errData.data, as: UTF8.self))
    }

    final class Box: @unchecked Sendable { var data = Data() }

    static func tempFile(_ bytes: [UInt8]) throws -> String {
        let path = NSTemporaryDirectory() + "h2test-\(UUID().uuidString)"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// curl, HTTP/2 by prior knowledge or by upgrade; fails unless the answer came over HTTP/2.
    static func curl(_ tool: Tool, port: Int, _ method: String, _ path: String, body: [UInt8]?, contentType: String?,
                     headers: [(String, String)], compressed: Bool = false) async throws -> Answer {
        let headFile = NSTemporaryDirectory() + "h2test-head-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: headFile) }
        var args = ["-s", "--max-time", "15", tool == .upgrade ? "--http2" : "--http2-prior-knowledge", "-D", headFile]
        if method == "HEAD" { args.append("-I") } else { args += ["-X", method] }
        if compressed { args.append("--compressed") }
        for (n, v) in headers { args += ["-H", "\(n): \(v)"] }
        var bodyFile: String?
        if let body {
            bodyFile = try tempFile(body)
            args += ["--data-binary", "@\(bodyFile!)", "-H", "Content-Type: \(contentType ?? "application/octet-stream")"]
        }
        defer { if let bodyFile { try? FileManager.default.removeItem(atPath: bodyFile) } }
        args.append("http://127.0.0.1:\(port)\(path)")
        let result = try await run("/usr/bin/curl", args)
        #expect(result.status == 0, "curl \(args): \(result.err)")
        let head = (try? String(contentsOfFile: headFile, encoding: .utf8)) ?? ""
        // The last head is the final answer (after `101 Switching Protocols` on an upgrade).
        let blocks = head.components(separatedBy: "\r\n\r\n").filter { $0.hasPrefix("HTTP/") }
        let last = blocks.last ?? ""
        var lines = last.components(separatedBy: "\r\n")
        let statusLine = lines.isEmpty ? "" : lines.removeFirst()
        var answer = Answer(status: Int(statusLine.split(separator: " ").dropFirst().first ?? "") ?? 0, body: result.out,
                            protocolLine: statusLine)
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if name == "content-type" { answer.contentType = value }
            if name == "content-encoding" { answer.contentEncoding = value }
        }
        #expect(statusLine.hasPrefix("HTTP/2 "), "\(method) \(path) via \(tool): not answered over HTTP/2: \(head)")
        if tool == .upgrade { #expect(blocks.first?.hasPrefix("HTTP/1.1 101") == true, "no upgrade: \(head)") }
        return answer
    }

    /// nghttp (HTTP/2 by prior knowledge): the body from stdout, the head from its HAR output.
    static func nghttp(port: Int, _ method: String, _ path: String, body: [UInt8]?, contentType: String?, headers: [(String, String)]) async throws -> Answer {
        let har = NSTemporaryDirectory() + "h2test-har-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: har) }
        var args = ["-t", "15", "--har=\(har)"]
        if method != "GET" { args += ["-H", ":method: \(method)"] }
        for (n, v) in headers { args += ["-H", "\(n): \(v)"] }
        var bodyFile: String?
        if let body {
            bodyFile = try tempFile(body)
            args += ["-d", bodyFile!, "-H", "content-type: \(contentType ?? "application/octet-stream")"]
        }
        defer { if let bodyFile { try? FileManager.default.removeItem(atPath: bodyFile) } }
        args.append("http://127.0.0.1:\(port)\(path)")
        let result = try await run("/usr/bin/nghttp", args)
        #expect(result.status == 0, "nghttp \(args): \(result.err)")
        let log = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: har)))) as? [String: Any]
        let entry = ((log?["log"] as? [String: Any])?["entries"] as? [[String: Any]])?.first
        let response = entry?["response"] as? [String: Any] ?? [:]
        var answer = Answer(status: response["status"] as? Int ?? 0, body: result.out, protocolLine: response["httpVersion"] as? String ?? "")
        for field in response["headers"] as? [[String: Any]] ?? [] {
            let name = (field["name"] as? String ?? "").lowercased()
            if name == "content-type" { answer.contentType = field["value"] as? String }
            if name == "content-encoding" { answer.contentEncoding = field["value"] as? String }
        }
        return answer
    }

    // MARK: - Comparison

    /// What two worlds (one driven over HTTP/1.1, one over HTTP/2) call their own resources.
    struct World { var vars: [String: String] = [:] }

    static func substitute(_ path: String, _ world: World) -> String {
        var path = path
        for (name, value) in world.vars { path = path.replacingOccurrences(of: "{\(name)}", with: value) }
        return path
    }

    /// Text with each world's own names and the server's generated ids and times made generic.
    static func normalize(_ answer: Answer, _ world: World) -> String {
        var text = answer.text
        for (name, value) in world.vars where !value.isEmpty { text = text.replacingOccurrences(of: value, with: "{\(name)}") }
        for (pattern, template) in [(#"\b(inst|strm|cinf|port|retr|op)_[A-Za-z0-9_-]+"#, "$1_*"),
                                    (#"\d{4}-\d\d-\d\dT[0-9:.]+Z"#, "<time>")] {
            text = text.replacingOccurrences(of: pattern, with: template, options: .regularExpression)
        }
        return text
    }

    static func isText(_ contentType: String?) -> Bool {
        guard let contentType else { return false }
        return contentType.contains("json") || contentType.hasPrefix("text/") || contentType.contains("yaml")
    }

    final class Comparer {
        let f: APIFixture
        let h2: H2Client
        var a = World(), b = World()
        var compared = 0
        init(_ f: APIFixture, _ h2: H2Client) { self.f = f; self.h2 = h2 }

        /// Sends the same request to world A over HTTP/1.1 and to world B over HTTP/2 with `tool`;
        /// expects the same status, content type and (normalised) body.
        @discardableResult
        func same(_ tool: Tool, _ method: String, _ path: String, json: String? = nil, body: [UInt8]? = nil,
                  headers: [(String, String)] = [], compareBody: Bool = true,
                  sourceLocation: SourceLocation = #_sourceLocation) async throws -> (h1: Answer, h2: Answer) {
            let pathA = HTTP2Tests.substitute(path, a), pathB = HTTP2Tests.substitute(path, b)
            let r = try await f.client.request(method, pathA, json: json, body: body, headers: headers)
            let one = Answer(status: r.status, contentType: r.header("Content-Type"), contentEncoding: r.header("Content-Encoding"), body: r.body)
            let payload = json.map { Array($0.utf8) } ?? body
            let contentType = json != nil ? "application/json" : (body != nil ? "application/octet-stream" : nil)
            let two: Answer
            switch tool {
            case .priorKnowledge, .upgrade:
                two = try await HTTP2Tests.curl(tool, port: f.server.port, method, pathB, body: payload, contentType: contentType, headers: headers)
            case .nghttp:
                two = try await HTTP2Tests.nghttp(port: f.server.port, method, pathB, body: payload, contentType: contentType, headers: headers)
            case .client:
                let x = try await h2.request(method, pathB, json: json, body: body, headers: headers)
                two = Answer(status: x.status ?? 0, contentType: x.header("content-type"), contentEncoding: x.header("content-encoding"), body: x.body)
            }
            let where_ = "\(method) \(path) via \(tool)"
            #expect(one.status == two.status, "\(where_): \(one) vs \(two)", sourceLocation: sourceLocation)
            #expect(one.contentType == two.contentType, "\(where_)", sourceLocation: sourceLocation)
            #expect(one.contentEncoding == two.contentEncoding, "\(where_)", sourceLocation: sourceLocation)
            if compareBody {
                if HTTP2Tests.isText(one.contentType) {
                    #expect(HTTP2Tests.normalize(one, a) == HTTP2Tests.normalize(two, b), "\(where_)", sourceLocation: sourceLocation)
                } else {
                    #expect(one.body == two.body, "\(where_): \(one.body.count) vs \(two.body.count) bytes", sourceLocation: sourceLocation)
                }
            }
            compared += 1
            return (one, two)
        }
    }

    /// Every route family answers the same over HTTP/2 as over HTTP/1.1, errors included.
    @Test func sameAnswersAsHTTP1ForEveryRouteFamily() async throws {
        let f = try await APIFixture.start()
        let h2 = try await H2Client.connect(port: f.server.port)
        let c = Comparer(f, h2)
        // Publications are the caller's, across instances: each world publishes under ids of its own.
        c.a.vars = ["id": APIFixture.contentID("world-a content"), "id2": APIFixture.contentID("world-a other")]
        c.b.vars = ["id": APIFixture.contentID("world-b content"), "id2": APIFixture.contentID("world-b other")]
        // Instances.
        let startup = try await c.same(.priorKnowledge, "POST", "/instances", json: #"{"version":2}"#)
        #expect(startup.h1.status == 201)
        c.a.vars["h"] = try #require(startup.h1.json["handle"] as? String)
        c.b.vars["h"] = try #require(startup.h2.json["handle"] as? String)
        #expect(try await c.same(.priorKnowledge, "POST", "/instances", json: #"{"version":99}"#).h1.status == 400)
        #expect(try await c.same(.client, "POST", "/instances", json: #"{"version":"#).h1.status == 400)
        try await c.same(.upgrade, "GET", "/instances/{h}")
        try await c.same(.upgrade, "GET", "/instances/{h}/status?timeoutMs=0")
        #expect(try await c.same(.nghttp, "GET", "/instances/inst_nope").h1.status == 404)
        // Ports.
        #expect(try await c.same(.priorKnowledge, "POST", "/instances/{h}/ports", json: "{}").h1.status == 201)
        // Streams, data, complete.
        let stream = try await c.same(.priorKnowledge, "POST", "/instances/{h}/content/{id}/streams", json: #"{"contentLength":5,"version":1}"#)
        c.a.vars["s"] = try #require(stream.h1.json["stream"] as? String)
        c.b.vars["s"] = try #require(stream.h2.json["stream"] as? String)
        let append = try await c.same(.priorKnowledge, "POST", "/instances/{h}/content/{id}/streams/{s}/data?op=append-1",
                                      body: Array("hello".utf8), headers: [("Prefer", "wait=5")])
        #expect(append.h2.json["state"] as? String == "completed")
        let past = try await c.same(.client, "POST", "/instances/{h}/content/{id}/streams/{s}/data", body: [1],
                                    headers: [("Prefer", "wait=5")])
        #expect(past.h1.json["code"] as? Int == 87, "\(past.h1)")  // bytes past the declared length
        let complete = try await c.same(.priorKnowledge, "POST", "/instances/{h}/content/{id}/streams/{s}/complete", headers: [("Prefer", "wait=5")])
        #expect(complete.h2.json["state"] as? String == "completed")
        // Content information.
        let info = try await c.same(.nghttp, "GET", "/instances/{h}/content/{id}/contentinfo?version=1")
        #expect(info.h2.body.count > 0)
        try await c.same(.upgrade, "GET", "/instances/{h}/content/{id}")
        #expect(try await c.same(.client, "GET", "/instances/{h}/content/bm9wZQ/contentinfo?version=1").h1.status == 404)
        let cinf = try await c.same(.priorKnowledge, "POST", "/instances/{h}/content/{id}/contentinfo", json: #"{"offset":0,"length":0}"#)
        c.a.vars["c"] = try #require(cinf.h1.json["contentInfo"] as? String)
        c.b.vars["c"] = try #require(cinf.h2.json["contentInfo"] as? String)
        // Reads.
        let read = try await c.same(.priorKnowledge, "POST", "/instances/{h}/content/{id}/contentinfo/{c}/reads?maxBytes=64&op=read-1",
                                    headers: [("Prefer", "wait=5")])
        #expect(read.h2.json["state"] as? String == "completed", "\(read.h2)")
        let buffer = try await c.same(.upgrade, "GET", "/instances/{h}/content/{id}/operations/read-1/buffer")
        #expect(buffer.h2.body.count == 64)
        // Operations.
        try await c.same(.upgrade, "GET", "/instances/{h}/content/{id}/operations/append-1?timeoutMs=100")
        try await c.same(.client, "GET", "/instances/{h}/operations?state=completed")
        #expect(try await c.same(.priorKnowledge, "GET", "/instances/{h}/operations/nope").h1.status == 404)
        let completions = try await c.same(.priorKnowledge, "GET", "/instances/{h}/ports/default/completions?max=1024&timeoutMs=0")
        #expect((completions.h2.json["completions"] as? [Any])?.isEmpty == false)
        #expect(try await c.same(.upgrade, "GET", "/instances/{h}/ports/default/completions?max=0").h1.status == 400)
        // Cancel (a pending append, made pending by a fault delay).
        try await c.same(.priorKnowledge, "PUT", "/admin/faults", json: #"{"completionDelayMs":60000,"kinds":["publishAddToStream"]}"#)
        let other = try await c.same(.client, "POST", "/instances/{h}/content/{id2}/streams", json: #"{"version":1}"#)
        c.a.vars["s2"] = try #require(other.h1.json["stream"] as? String)
        c.b.vars["s2"] = try #require(other.h2.json["stream"] as? String)
        #expect(try await c.same(.priorKnowledge, "POST", "/instances/{h}/content/{id2}/streams/{s2}/data?op=pend-1", body: [7]).h1.status == 202)
        let cancel = try await c.same(.priorKnowledge, "DELETE", "/instances/{h}/content/{id2}/operations/pend-1")
        #expect(cancel.h2.status == 200)
        #expect((cancel.h2.json["operation"] as? [String: Any])?["state"] as? String == "canceled")
        #expect(try await c.same(.upgrade, "DELETE", "/instances/{h}/content/{id2}/operations/pend-1").h2.json["code"] as? Int == 4059)
        // Admin.
        try await c.same(.upgrade, "GET", "/admin/faults")
        try await c.same(.priorKnowledge, "PUT", "/admin/faults", json: "{}")
        #expect(try await c.same(.priorKnowledge, "PUT", "/admin/faults", json: "[1").h1.status == 400)
        try await c.same(.nghttp, "GET", "/admin/policy")
        try await c.same(.client, "GET", "/admin/service")
        // Operational endpoints and routing errors.
        try await c.same(.priorKnowledge, "GET", "/healthz")
        try await c.same(.upgrade, "GET", "/readyz")
        let openapi = try await c.same(.priorKnowledge, "GET", "/openapi.yaml")
        #expect(openapi.h2.body.count > 10_000)
        let metrics = try await c.same(.priorKnowledge, "GET", "/metrics", compareBody: false)
        #expect(metrics.h2.text.contains("peerdist_http_requests_total"))
        #expect(try await c.same(.priorKnowledge, "GET", "/no/such/route").h1.status == 404)
        #expect(try await c.same(.upgrade, "DELETE", "/healthz").h1.status == 405)
        #expect(try await c.same(.client, "POST", "/instances", body: Array("{}".utf8), headers: [("Content-Type", "text/plain")]).h1.status == 415)
        // Instance shutdown last.
        try await c.same(.priorKnowledge, "DELETE", "/instances/{h}")
        #expect(try await c.same(.client, "GET", "/instances/{h}").h1.status == 404)
        #expect(c.compared >= 40)
        await f.stop()
    }

    // MARK: - Long-polls on one connection

    static func completionsPath(_ h: String, timeoutMs: Int, max: Int = 1) -> String {
        "/instances/\(h)/ports/default/completions?timeoutMs=\(timeoutMs)&max=\(max)"
    }

    /// 1,000 long-polls parked at once on one HTTP/2 connection each get exactly one completion
    /// when 1,000 operations complete; none is lost or given twice.
    @Test func thousandConcurrentLongPollsOnOneConnection() async throws {
        var configuration = ServerConfiguration()
        configuration.http2.maxConcurrentStreams = 1_100
        let f = try await APIFixture.start(configuration: configuration)
        let h = try await f.startup()
        let s = try await f.openStream(h, CancelRouteTests.id)
        let polls = try await H2Client.connect(port: f.server.port)
        let ids = (0..<1_000).map { _ in polls.submit("GET", Self.completionsPath(h, timeoutMs: 30_000)) }
        #expect(ids.allSatisfy { $0 > 0 })
        let engine = f.engine
        try await polls.pump(timeout: .seconds(30), "1,000 parked waiters") { _ in engine.parkedDequeueCount(instance: h, port: "default") == 1_000 }
        #expect(ids.allSatisfy { !polls.isClosed($0) })

        // 1,000 appends, each completing at once, from a second HTTP/2 connection.
        async let answers = polls.wait(for: ids, timeout: .seconds(60))
        let producer = try await H2Client.connect(port: f.server.port)
        let appends = (0..<1_000).map { i in
            producer.submit("POST", "/instances/\(h)/content/\(CancelRouteTests.id)/streams/\(s)/data?op=c\(i)",
                            headers: [("content-type", "application/octet-stream")], body: [UInt8(i & 0xFF)])
        }
        let appended = try await producer.wait(for: appends, timeout: .seconds(60))
        #expect(appended.allSatisfy { $0.status == 202 || $0.status == 200 })
        let received = try await answers
        var operations: [String] = []
        for r in received {
            #expect(r.status == 200, "\(r.stream): \(r.text)")
            let completions = r.json["completions"] as? [[String: Any]] ?? []
            #expect(completions.count == 1, "\(r.stream): \(r.text)")
            operations += completions.compactMap { $0["operation"] as? String }
        }
        #expect(operations.count == 1_000)
        #expect(Set(operations) == Set((0..<1_000).map { "c\($0)" }))
        #expect(engine.parkedDequeueCount(instance: h, port: "default") == 0)
        await f.stop()
    }

    /// A cancel sent on one stream wakes an operation waiter and a port waiter parked on two other
    /// streams of the same connection.
    @Test func cancelOnOneStreamWakesWaitersOnOthers() async throws {
        let f = try await APIFixture.start()
        let h = try await f.startup()
        try await CancelRouteTests().pendingAppend(f, h, op: "w1")
        let h2 = try await H2Client.connect(port: f.server.port)
        let opWaiter = h2.submit("GET", "/instances/\(h)/content/\(CancelRouteTests.id)/operations/w1?timeoutMs=20000")
        let portWaiter = h2.submit("GET", Self.completionsPath(h, timeoutMs: 20_000))
        let engine = f.engine
        try await h2.pump(timeout: .seconds(10), "the port waiter to park") { _ in engine.parkedDequeueCount(instance: h, port: "default") == 1 }
        try await h2.ping()
        #expect(!h2.isClosed(opWaiter))
        #expect(!h2.isClosed(portWaiter))

        let started = ContinuousClock.now
        let cancel = try await h2.request("DELETE", "/instances/\(h)/content/\(CancelRouteTests.id)/operations/w1")
        #expect(cancel.status == 200, "\(cancel.text)")
        #expect((cancel.json["operation"] as? [String: Any])?["state"] as? String == "canceled")
        let woken = try await h2.wait(for: [opWaiter, portWaiter], timeout: .seconds(5))
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(woken[0].status == 200)
        #expect(woken[0].json["state"] as? String == "canceled", "\(woken[0].text)")
        #expect(woken[0].json.resultCode == 995)
        let completions = woken[1].json["completions"] as? [[String: Any]] ?? []
        #expect(completions.count == 1)
        #expect(completions.first?["operation"] as? String == "w1")
        #expect(completions.first?.resultCode == 995)
        try await f.setFaults("{}")
        await f.stop()
    }

    /// A long-poll reset by the client while parked takes no completion with it: the completion
    /// posted right after the reset (which the server has read: a PING answered behind it) goes
    /// to the next poll on the same connection, 20 times over.
    @Test func resetDuringALongPollLosesNoCompletion() async throws {
        let f = try await APIFixture.start()
        let h = try await f.startup()
        let s = try await f.openStream(h, CancelRouteTests.id)
        let h2 = try await H2Client.connect(port: f.server.port)
        let engine = f.engine
        for i in 0..<20 {
            let poll = h2.submit("GET", Self.completionsPath(h, timeoutMs: 20_000))
            try await h2.pump(timeout: .seconds(10), "the poll to park") { _ in engine.parkedDequeueCount(instance: h, port: "default") == 1 }
            h2.reset(poll)
            try await h2.ping()
            let append = try await f.client.request("POST", "/instances/\(h)/content/\(CancelRouteTests.id)/streams/\(s)/data?op=r\(i)",
                                                    body: [1], headers: [("Prefer", "wait=5")])
            #expect(append.json["state"] as? String == "completed")
            let reset = try #require(h2.response(poll))
            #expect(reset.closed && !reset.ended && reset.body.isEmpty, "round \(i): the reset stream was answered: \(reset.text)")
            let next = try await h2.request("GET", Self.completionsPath(h, timeoutMs: 5_000, max: 10))
            let got = (next.json["completions"] as? [[String: Any]] ?? []).compactMap { $0["operation"] as? String }
            #expect(got == ["r\(i)"], "round \(i): \(next.text)")
        }
        #expect(engine.parkedDequeueCount(instance: h, port: "default") == 0)
        await f.stop()
    }

    // MARK: - Floods

    /// A rapid-reset burst (CVE-2023-44487) gets GOAWAY ENHANCE_YOUR_CALM and the connection
    /// closed, while an HTTP/2 connection opened before it and HTTP/1.1 keep being served.
    @Test func rapidResetGetsGoAwayWhileOthersStayServed() async throws {
        let f = try await APIFixture.start()
        let h = try await f.startup()
        let bystander = try await H2Client.connect(port: f.server.port)
        let parked = bystander.submit("GET", Self.completionsPath(h, timeoutMs: 20_000))
        let engine = f.engine
        try await bystander.pump(timeout: .seconds(10), "the bystander's poll to park") { _ in engine.parkedDequeueCount(instance: h, port: "default") == 1 }

        let attacker = try await H2Client.connect(port: f.server.port)
        for _ in 0..<1_000 {
            let id = attacker.submit("GET", Self.completionsPath(h, timeoutMs: 20_000))
            guard id > 0 else { break }
            attacker.reset(id)
        }
        let goAway = try await attacker.waitForGoAway(timeout: .seconds(10))
        #expect(goAway.code == 11, "GOAWAY code \(goAway.code)")  // ENHANCE_YOUR_CALM
        #expect(await attacker.waitForClose(timeout: .seconds(10)))

        #expect(try await bystander.request("GET", "/healthz").status == 200)
        #expect(try await f.client.request("GET", "/healthz").status == 200)
        let fresh = try await H2Client.connect(port: f.server.port)
        #expect(try await fresh.request("GET", "/instances/\(h)").status == 200)
        // The bystander's parked poll is still there and still answered.
        let s = try await f.openStream(h, CancelRouteTests.id)
        _ = try await f.client.request("POST", "/instances/\(h)/content/\(CancelRouteTests.id)/streams/\(s)/data?op=after", body: [1], headers: [("Prefer", "wait=5")])
        let answer = try await bystander.wait(for: [parked], timeout: .seconds(5))[0]
        #expect((answer.json["completions"] as? [[String: Any]])?.first?["operation"] as? String == "after", "\(answer.text)")
        await f.stop()
    }

    /// A header block that never ends (HEADERS without END_HEADERS, then CONTINUATION after
    /// CONTINUATION, 32 MiB of them) gets GOAWAY ENHANCE_YOUR_CALM and the connection closed long
    /// before the flood is read; the server keeps serving.
    @Test func continuationFloodIsCutOff() async throws {
        let f = try await APIFixture.start()
        let h2 = try await H2Client.connect(port: f.server.port)
        var flood = H2Frame.frame(type: 1, flags: 0x1, stream: 1, payload: H2Frame.requestBlock(path: "/healthz"))  // END_STREAM, no END_HEADERS
        let literal = H2Frame.literal("x-flood", String(repeating: "a", count: 100))
        let payload = Array([[UInt8]](repeating: literal, count: 140).joined())
        let continuation = H2Frame.frame(type: 9, flags: 0, stream: 1, payload: payload)
        let frames = (32 << 20) / continuation.count
        flood.reserveCapacity(frames * continuation.count)
        for _ in 0..<frames { flood += continuation }
        h2.sendRaw(flood)
        let goAway = try await h2.waitForGoAway(timeout: .seconds(10))
        #expect(goAway.code == 11, "GOAWAY code \(goAway.code)")
        #expect(await h2.waitForClose(timeout: .seconds(10)))
        // Cut off: the server stopped reading long before the end of the flood.
        #expect(h2.unsentBytes > 16 << 20, "unsent \(h2.unsentBytes)")
        #expect(try await f.client.request("GET", "/healthz").status == 200)
        await f.stop()
    }

    // MARK: - gzip

    /// gzip both ways over HTTP/2: a compressed answer for a client that accepts it (H2Client
    /// and curl --compressed), and gzip request bodies on a JSON route and on a content upload,
    /// giving the same content information as the plain upload.
    @Test func gzipRoundTripsBothWays() async throws {
        let f = try await APIFixture.start()
        let h2 = try await H2Client.connect(port: f.server.port)
        let plain = try await f.client.request("GET", "/openapi.yaml")
        let zipped = try await h2.request("GET", "/openapi.yaml", headers: [("accept-encoding", "gzip")])
        #expect(zipped.status == 200)
        #expect(zipped.header("content-encoding") == "gzip")
        #expect(zipped.body.count < plain.body.count / 2)
        #expect(Gzip.decompress(zipped.body) == plain.body)
        let viaCurl = try await Self.curl(.priorKnowledge, port: f.server.port, "GET", "/openapi.yaml", body: nil, contentType: nil,
                                          headers: [], compressed: true)
        #expect(viaCurl.contentEncoding == "gzip")
        #expect(viaCurl.body == plain.body)

        // A gzip JSON body.
        let startup = try await h2.request("POST", "/instances", body: Gzip.compress(Array(#"{"version":2}"#.utf8)),
                                           headers: [("content-type", "application/json"), ("content-encoding", "gzip")])
        #expect(startup.status == 201, "\(startup.text)")
        let h = try #require(startup.json["handle"] as? String)
        // A gzip content upload, against the same content uploaded plain over HTTP/1.1.
        let content = Array((0..<200_000).map { UInt8(truncatingIfNeeded: $0 % 251) })
        let zippedID = APIFixture.contentID("zipped"), plainID = APIFixture.contentID("plain")
        try await f.publish(h, plainID, content)
        let stream = try await h2.request("POST", "/instances/\(h)/content/\(zippedID)/streams", json: #"{"version":1}"#)
        let s = try #require(stream.json["stream"] as? String, "\(stream.text)")
        let append = try await h2.request("POST", "/instances/\(h)/content/\(zippedID)/streams/\(s)/data",
                                          body: Gzip.compress(content),
                                          headers: [("content-type", "application/octet-stream"), ("content-encoding", "gzip"), ("prefer", "wait=10")])
        #expect(append.json["state"] as? String == "completed", "\(append.text)")
        #expect(append.json["bytesTransferred"] as? Int == content.count)
        let done = try await h2.request("POST", "/instances/\(h)/content/\(zippedID)/streams/\(s)/complete", headers: [("prefer", "wait=10")])
        #expect(done.json["state"] as? String == "completed")
        let infoZipped = try await h2.request("GET", "/instances/\(h)/content/\(zippedID)/contentinfo?version=1")
        let infoPlain = try await f.client.request("GET", "/instances/\(h)/content/\(plainID)/contentinfo?version=1")
        #expect(infoZipped.status == 200)
        #expect(infoZipped.body == infoPlain.body)
        // Another coding is 415.
        let br = try await h2.request("POST", "/instances", body: [1, 2, 3], headers: [("content-type", "application/json"), ("content-encoding", "br")])
        #expect(br.status == 415)
        #expect(br.header("content-type") == "application/problem+json")
        await f.stop()
    }

    /// A decompression bomb (about 1 MiB of gzip inflating to 1 GiB) is 413 on a JSON route and
    /// on a content upload, and the connection goes on serving. (The server's memory while it
    /// refuses one is measured against the daemon: PeerDistDaemonTests.HTTP2DaemonTests.)
    @Test func decompressionBombIs413() async throws {
        let f = try await APIFixture.start()
        let h = try await f.startup()
        let s = try await f.openStream(h, CancelRouteTests.id)
        let bomb = gzipOfZeros(count: 1 << 30)
        #expect(bomb.count > 900_000 && bomb.count < 1_200_000, "\(bomb.count)")
        let h2 = try await H2Client.connect(port: f.server.port)
        let json = try await h2.request("POST", "/instances", body: bomb,
                                        headers: [("content-type", "application/json"), ("content-encoding", "gzip")], timeout: .seconds(30))
        #expect(json.status == 413, "\(json.text)")
        #expect(json.header("content-type") == "application/problem+json")
        let upload = try await h2.request("POST", "/instances/\(h)/content/\(CancelRouteTests.id)/streams/\(s)/data", body: bomb,
                                          headers: [("content-type", "application/octet-stream"), ("content-encoding", "gzip")], timeout: .seconds(30))
        #expect(upload.status == 413, "\(upload.text)")
        #expect(try await h2.request("GET", "/healthz").status == 200)
        await f.stop()
    }
}
