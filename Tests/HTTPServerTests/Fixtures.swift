import HTTPServer
import ServerTesting
import Synchronization

/// Routes the server tests use.
enum Fixtures {
    /// Counts cancellations and completions seen by handlers.
    final class Probe: Sendable {
        let cancelled = Atomic<Int>(0)
        let started = Atomic<Int>(0)
        let aborted = Atomic<Int>(0)
        let written = Mutex<[Bool]>([])
        /// Held weakly: the body streams handlers saw (to check that none outlives its exchange).
        let streams = Mutex<[Weak]>([])
        var liveStreams: Int { streams.withLock { $0.filter { $0.object != nil }.count } }
    }

    final class Weak: @unchecked Sendable {
        weak var object: AnyObject?
        init(_ object: AnyObject) { self.object = object }
    }

    static func routes(_ probe: Probe) -> [Route] {
        [
            .sync(.get, "/hello") { _ in .json(200, #"{"hello":"world"}"#) },
            .sync(.get, "/echo/{name}") { req in .json(200, "{\"name\":\"\(req.parameters["name"] ?? "")\",\"q\":\"\(req.queryValue("q") ?? "")\"}") },
            .sync(.post, "/buffered") { req in .json(200, "{\"length\":\(req.body.bytes.count)}") },
            .async(.post, "/streamed", body: .streamed) { req in
                guard case .stream(let stream) = req.body else { throw HTTPError.http(400, "no stream") }
                probe.streams.withLock { $0.append(Weak(stream)) }
                var total = 0
                var sum: UInt64 = 0
                do {
                    while let chunk = try await stream.next() {
                        total += chunk.count
                        for b in chunk { sum &+= UInt64(b) }
                    }
                } catch {
                    probe.aborted.add(1, ordering: .relaxed)
                    throw error
                }
                return .json(200, "{\"length\":\(total),\"sum\":\(sum)}")
            },
            // Reads one chunk, then holds the rest of the body unread for up to 10 s (backpressure).
            // Ending early, however (its body failed, its task cancelled), counts as cancelled.
            .async(.post, "/hold", body: .streamed) { req in
                guard case .stream(let stream) = req.body else { throw HTTPError.http(400, "no stream") }
                probe.streams.withLock { $0.append(Weak(stream)) }
                probe.started.add(1, ordering: .relaxed)
                do {
                    _ = try await stream.next()
                    try await Task.sleep(for: .seconds(10))
                } catch {
                    probe.cancelled.add(1, ordering: .relaxed)
                    throw error
                }
                return .json(200, #"{"held":true}"#)
            },
            // Reads its body slowly (so reading pauses for it often).
            .async(.post, "/slowread", body: .streamed) { req in
                guard case .stream(let stream) = req.body else { throw HTTPError.http(400, "no stream") }
                var total = 0
                while let chunk = try await stream.next() {
                    total += chunk.count
                    try await Task.sleep(for: .milliseconds(1))
                }
                return .json(200, "{\"length\":\(total)}")
            },
            // Refuses from the head, reading nothing.
            .async(.post, "/refuse", body: .streamed) { req in
                if case .stream(let stream) = req.body { probe.streams.withLock { $0.append(Weak(stream)) } }
                throw HTTPError.http(413, "refused from the head")
            },
            .async(.get, "/wait", interruptibleOnDrain: true) { req in
                probe.started.add(1, ordering: .relaxed)
                let ms = Int(req.queryValue("ms") ?? "") ?? 10_000
                do {
                    try await Task.sleep(for: .milliseconds(ms))
                } catch {
                    probe.cancelled.add(1, ordering: .relaxed)
                    return .json(200, #"{"interrupted":true}"#)
                }
                return .json(200, #"{"interrupted":false}"#)
            },
            // Works for a while on a request it has in full; counts being cancelled.
            .async(.post, "/work") { req in
                probe.started.add(1, ordering: .relaxed)
                do {
                    try await Task.sleep(for: .milliseconds(Int(req.queryValue("ms") ?? "") ?? 200))
                } catch {
                    probe.cancelled.add(1, ordering: .relaxed)
                    throw error
                }
                return .json(200, "{\"length\":\(req.body.bytes.count)}")
            },
            .async(.get, "/slow") { req in
                probe.started.add(1, ordering: .relaxed)
                try? await Task.sleep(for: .milliseconds(Int(req.queryValue("ms") ?? "") ?? 300))
                return .json(200, #"{"slow":true}"#)
            },
            .sync(.get, "/json") { req in
                let n = Int(req.queryValue("n") ?? "") ?? 4_000
                return .json(200, "{\"pad\":\"" + String(repeating: "ab", count: n / 2) + "\"}")
            },
            .sync(.get, "/tracked") { _ in
                Response(status: 200, body: Array("tracked".utf8)) { ok in probe.written.withLock { $0.append(ok) } }
            },
            .sync(.get, "/big") { req in
                let n = Int(req.queryValue("n") ?? "") ?? 1_000_000
                return Response(status: 200, body: [UInt8](repeating: 0x61, count: n)) { ok in probe.written.withLock { $0.append(ok) } }
            },
        ]
    }

    static func server(_ probe: Probe = Probe(), configure: (inout ServerConfiguration) -> Void = { _ in }) throws -> TestServer {
        var configuration = ServerConfiguration()
        // Clients may connect well before their first byte on a busy machine: the head timeout
        // (from accept) is widened, and the minimum body rate (which a test holding a body
        // half-sent on a busy machine falls below) is off, unless a test sets its own.
        configuration.headerTimeout = .seconds(120)
        configuration.minBodyDataRate = 0
        configure(&configuration)
        return try TestServer(routes: routes(probe), configuration: configuration)
    }
}
