import Dispatch
import Foundation
import HTTPServer
import HTTPWire
import PeerDistAPI

/// FuzzRouteParameters: query and JSON parameter parsing of every route, by running PeerDist's
/// real handlers in process (no sockets) on a fresh service per input, with every wait capped at
/// 0 (`--max-wait 0`: a long-poll or `Prefer: wait` answers with what is there at once).
///
/// Input: up to 16 requests separated by a line `--`. Each is `METHOD TARGET`, header lines, an
/// empty line and the body, lines ending in LF:
///
///     POST /instances/$h/content/aGk/streams
///     Content-Type: application/json
///
///     {"contentLength":2,"version":1}
///
/// `$h`, `$s`, `$p`, `$c` and `$o` in the target, the fields and the body stand for the last
/// instance handle, stream, port, content-information handle and operation id answered so far,
/// so that one input can reach the handlers behind a valid handle. The head goes through the real
/// parser (Host and Content-Length are added when absent), the target through the real router.
///
/// Checks on every answer: a status in 100...599 and never 500; header fields that are tokens and
/// clean values, none the server owns; an error is application/problem+json with an integer
/// `code`, a string `error` and its `status`; a JSON body is valid JSON; a gzip body inflates;
/// each handler answers within 2 s.
public enum RouteParametersFuzzer {
    public static func run(_ buffer: UnsafeRawBufferPointer) {
        let service = PeerDistServiceFactory.make(maxWaitMs: 0)
        var handles = Handles()
        for text in split(Array(buffer)).prefix(16) {
            guard let spec = RequestSpec(text) else { continue }
            let response = answer(spec.substituting(handles), service: service)
            check(response)
            handles.learn(from: response)
        }
        // Shut every instance down, as a client that is done would: what the engine still holds
        // after that and the service's release is a leak (LeakSanitizer reports it).
        for instance in handles.instances {
            guard let spec = RequestSpec(Array("DELETE /instances/\(instance)\n".utf8)) else { continue }
            check(answer(spec, service: service))
        }
    }

    /// The requests of an input: split at lines that are exactly `--`.
    static func split(_ input: [UInt8]) -> [[UInt8]] {
        var parts: [[UInt8]] = []
        var start = 0
        var i = 0
        let separator: [UInt8] = Array("\n--\n".utf8)
        while i + separator.count <= input.count {
            if input[i..<i + separator.count].elementsEqual(separator) {
                parts.append(Array(input[start..<i]))
                i += separator.count
                start = i
            } else {
                i += 1
            }
        }
        parts.append(Array(input[start...]))
        return parts
    }

    /// One request as the input spells it.
    struct RequestSpec {
        var method: String
        var target: String
        var fields: [(String, String)]
        var body: [UInt8]

        init?(_ bytes: [UInt8]) {
            var lines: [String] = []
            var i = 0
            var bodyStart: Int?
            while i <= bytes.count {
                let end = bytes[i...].firstIndex(of: 0x0A) ?? bytes.count
                var line = bytes[i..<end]
                if line.last == 0x0D { line = line.dropLast() }
                if line.isEmpty && !lines.isEmpty {
                    bodyStart = min(end + 1, bytes.count)
                    break
                }
                lines.append(String(decoding: line, as: UTF8.self))
                i = end + 1
            }
            guard let first = lines.first else { return nil }
            let parts = first.split(separator: " ", maxSplits: 1)
            guard let m = parts.first else { return nil }
            method = String(m)
            target = parts.count > 1 ? String(parts[1]) : "/"
            fields = lines.dropFirst().compactMap { line in
                guard let colon = line.firstIndex(of: ":") else { return nil }
                return (String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces))
            }
            body = bodyStart.map { Array(bytes[$0...]) } ?? []
        }

        func substituting(_ h: Handles) -> RequestSpec {
            var copy = self
            copy.target = h.substitute(target)
            copy.fields = fields.map { ($0.0, h.substitute($0.1)) }
            if body.contains(0x24) { copy.body = Array(h.substitute(String(decoding: body, as: UTF8.self)).utf8) }
            return copy
        }

        /// The request head as a client would send it.
        var head: [UInt8] {
            var out = "\(method) \(target) HTTP/1.1\r\n"
            let names = Set(fields.map { $0.0.lowercased() })
            if !names.contains("host") { out += "Host: fuzz\r\n" }
            for (name, value) in fields { out += "\(name): \(value)\r\n" }
            if !body.isEmpty, !names.contains("content-length"), !names.contains("transfer-encoding") {
                out += "Content-Length: \(body.count)\r\n"
            }
            return Array((out + "\r\n").utf8)
        }
    }

    /// What earlier answers named, for `$h` and the others.
    struct Handles {
        var values: [String: String] = [:]
        /// Every instance handle answered, to shut down at the end.
        var instances: [String] = []

        func substitute(_ s: String) -> String {
            guard s.contains("$") else { return s }
            var out = s
            for key in ["h", "s", "p", "c", "o"] {
                out = out.replacingOccurrences(of: "$" + key, with: values[key] ?? "none")
            }
            return out
        }

        mutating func learn(from response: Response) {
            guard (200..<300).contains(response.status),
                  let object = try? JSONSerialization.jsonObject(with: Data(plainBody(response))) as? [String: Any] else { return }
            for (key, member) in [("h", "handle"), ("s", "stream"), ("p", "port"), ("c", "contentInfo"), ("o", "id")] {
                if let value = object[member] as? String { values[key] = value }
            }
            if let handle = object["handle"] as? String, !instances.contains(handle), instances.count < 16 {
                instances.append(handle)
            }
            if let op = object["operation"] as? [String: Any], let id = op["id"] as? String { values["o"] = id }
        }
    }

    /// Parses, routes and runs one request the way a connection does.
    static func answer(_ spec: RequestSpec, service: PeerDistService) -> Response {
        var parser = RequestHeadParser(limits: HTTP1Limits())
        let head: RequestHead
        do throws(HTTP1ParseError) {
            guard case .complete(let parsed, _) = try withBytes(spec.head, { buf throws(HTTP1ParseError) in try parser.parse(buf) }) else {
                return ProblemResponse.make(.http(400, "incomplete head"))
            }
            head = parsed
        } catch {
            return ProblemResponse.make(HTTPError.from(error))
        }
        var body = spec.body
        switch head.framing {
        case .none: body = []
        case .length(let n):
            guard n <= UInt64(body.count) else { return ProblemResponse.make(.http(400, "body shorter than its length")) }
            body = Array(body.prefix(Int(n)))
        case .chunked: break
        }
        let probe = Request(head: head)
        switch service.router.match(head.method, path: probe.path) {
        case .notImplemented:
            return ProblemResponse.make(.http(501, "method \(head.method) is not implemented"))
        case .notFound:
            return ProblemResponse.make(.http(404, "no route for \(head.method) \(probe.path)"))
        case .methodNotAllowed(let allow):
            var headers = HTTPFields()
            headers.append(name: "Allow", value: allow.joined(separator: ", "))
            return ProblemResponse.make(.http(405, "method \(head.method) not allowed here", headers: headers))
        case .found(let route, let parameters):
            let requestBody: RequestBody
            switch route.bodyMode {
            case .buffered:
                requestBody = body.isEmpty ? .empty : .buffered(body)
            case .streamed:
                if case .none = head.framing { return ProblemResponse.make(.http(411, "a Content-Length or chunked body is required")) }
                var declared: UInt64?
                if case .length(let n) = head.framing { declared = n }
                let stream = BodyStream(declaredLength: declared, capacity: 1 << 20) {}
                let half = body.count / 2
                if half > 0 { _ = stream.push(Array(body[..<half])) }
                if half < body.count { _ = stream.push(Array(body[half...])) }
                stream.finish()
                requestBody = .stream(stream)
            }
            let request = Request(head: head, parameters: parameters, body: requestBody)
            var response = run(route, request, service: service)
            ResponseCompression.apply(&response, request: request, minimumBytes: 1_024)
            response.onWritten?(true)
            return response
        }
    }

    private final class Answer: @unchecked Sendable {
        // Safety: written once by the task before the semaphore is signalled, read after.
        var response: Response?
    }

    static func run(_ route: Route, _ request: Request, service: PeerDistService) -> Response {
        let render = service.errorRenderer
        func awaitAnswer(_ handler: @escaping @Sendable (Request) async throws -> Response) -> Response {
            let done = DispatchSemaphore(value: 0)
            let answer = Answer()
            Task {
                do { answer.response = try await handler(request) } catch { answer.response = render(error) }
                done.signal()
            }
            fuzzCheck(done.wait(timeout: .now() + .seconds(2)) == .success,
                      "\(request.method) \(route.template) did not answer within 2 s")
            return answer.response!
        }
        switch route.handler {
        case .sync(let handler):
            do { return try handler(request) } catch { return render(error) }
        case .inlineFirst(let inline, let waiting):
            do {
                if let immediate = try inline(request) { return immediate }
            } catch {
                return render(error)
            }
            return awaitAnswer(waiting)
        case .async(let handler):
            return awaitAnswer(handler)
        case .parked(let handler):
            let done = DispatchSemaphore(value: 0)
            let answer = Answer()
            do {
                _ = try handler(request, Responder { result in
                    switch result {
                    case .success(let response): answer.response = response
                    case .failure(let error): answer.response = render(error)
                    }
                    done.signal()
                })
            } catch {
                return render(error)
            }
            fuzzCheck(done.wait(timeout: .now() + .seconds(2)) == .success,
                      "\(request.method) \(route.template) did not answer within 2 s")
            return answer.response!
        }
    }

    static func plainBody(_ response: Response) -> [UInt8] {
        guard response.headers["Content-Encoding"] == "gzip" else { return response.body }
        guard let inflated = Gzip.decompress(response.body, limit: 16 << 20) else {
            fatalError("fuzz invariant broken: a gzip response body does not inflate")
        }
        return inflated
    }

    private struct Problem: Decodable {
        let code: Int
        let error: String
        let status: Int
    }

    static func check(_ response: Response) {
        let status = response.status
        fuzzCheck((100...599).contains(status) && status != 500, "status \(status): \(String(decoding: response.body, as: UTF8.self))")
        for field in response.headers {
            fuzzCheck(!field.name.isEmpty && field.name.utf8.allSatisfy(HTTPTokens.isTChar), "field name '\(field.name)'")
            fuzzCheck(field.value.utf8.allSatisfy { $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }, "control character in \(field.name): '\(field.value)'")
            for owned in ["Content-Length", "Transfer-Encoding", "Connection", "Date"] {
                fuzzCheck(!field.name.asciiCaseInsensitiveEquals(owned), "a handler set \(owned)")
            }
        }
        let body = plainBody(response)
        let type = response.headers["Content-Type"]
        if status >= 400 {
            fuzzCheck(type == "application/problem+json", "\(status) with Content-Type \(type ?? "none")")
            guard let problem = try? JSONDecoder().decode(Problem.self, from: Data(body)) else {
                fatalError("fuzz invariant broken: \(status) body is not problem+json with integer code and string error: \(String(decoding: body, as: UTF8.self))")
            }
            fuzzCheck(problem.status == status && !problem.error.isEmpty, "problem \(problem) for status \(status)")
        } else if type == "application/json" {
            fuzzCheck((try? JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed])) != nil,
                      "\(status) application/json body is not JSON: \(String(decoding: body, as: UTF8.self))")
        }
    }
}
