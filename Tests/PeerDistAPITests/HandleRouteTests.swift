import Foundation
import ServerTesting
import Testing

/// Issue 23, part 1: every route whose path names a handle under the instance (`{p}`, `{s}`,
/// `{c}`, `{r}`) answers an unknown one with 404 and 6 `ERROR_INVALID_HANDLE`, before it looks at
/// anything else the request names (an operation of an unknown retrieval is 6, not 4059), as
/// Windows answers a call on a handle that is not open. The routes are read from openapi.yaml, so
/// a route added later is walked too.
@Suite struct HandleRouteTests {
    static let id = APIFixture.contentID("content-1")

    /// One operation of openapi.yaml: its method, path template and request body's media type.
    struct DocumentedRoute: CustomStringConvertible {
        var method: String
        var path: String
        var bodyType: String?
        var description: String { "\(method) \(path)" }
    }

    /// The operations of openapi.yaml, read line by line (paths at two spaces, methods at four,
    /// a request body's media types at ten).
    static func documentedRoutes() throws -> [DocumentedRoute] {
        let text = String(decoding: try OpenAPIDocumentTests.repositoryDocument(), as: UTF8.self)
        var routes: [DocumentedRoute] = []
        var path: String?
        var inPaths = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "paths:" { inPaths = true; continue }
            guard inPaths else { continue }
            if !line.hasPrefix(" "), !line.isEmpty { break }  // the next top-level key
            if line.hasPrefix("  /"), line.hasSuffix(":") {
                path = String(line.dropFirst(2).dropLast())
            } else if let path, line.hasPrefix("    "), !line.hasPrefix("     "), line.hasSuffix(":") {
                let method = line.trimmingCharacters(in: .whitespaces).dropLast().uppercased()
                if ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"].contains(method) {
                    routes.append(DocumentedRoute(method: method, path: path))
                }
            } else if line.hasPrefix("          application/"), line.hasSuffix(":"), !routes.isEmpty,
                      routes[routes.count - 1].bodyType == nil {
                routes[routes.count - 1].bodyType = line.trimmingCharacters(in: .whitespaces).dropLast().description
            }
        }
        return routes
    }

    static let handleParameters = ["p", "s", "c", "r"]

    @Test func everyHandleBearingRouteAnswersAnUnknownHandleWith6() async throws {
        let routes = try Self.documentedRoutes().filter { route in
            Self.handleParameters.contains { route.path.contains("{\($0)}") }
        }
        // Ports (2 paths), streams (3), content-information handles (2), retrievals (8).
        #expect(routes.count >= 18, "\(routes)")

        let retrievals = try await RetrievalFixture.start()
        let f = retrievals.api
        let h = try await f.startup()
        try await f.publish(h, Self.id, Array(repeating: 7, count: 1_000))
        let port = try #require(try await f.client.request("POST", "/instances/\(h)/ports").json["port"] as? String)
        // The stream's content is not published yet: its paths name that content.
        let unpublished = APIFixture.contentID("content-2")
        let stream = try await f.openStream(h, unpublished)
        let reader = try #require(
            try await f.client.request("POST", "/instances/\(h)/content/\(Self.id)/contentinfo", json: "{}").json["contentInfo"] as? String)
        let open = try await f.client.request(
            "POST", "/instances/\(h)/retrievals", json: #"{"contentTag":"00112233445566778899aabbccddeeff"}"#)
        let retrieval = try #require(open.json["retrieval"] as? String, "\(open.text)")
        let real = ["h": h, "op": "op-1", "p": port, "s": stream, "c": reader, "r": retrieval]

        var walked = 0
        for route in routes {
            for unknown in Self.handleParameters where route.path.contains("{\(unknown)}") {
                // A real handle with a character appended: well formed, but not open.
                var values = real
                values[unknown, default: ""] += "x"
                values["id"] = route.path.contains("{s}") ? unpublished : Self.id
                var path = route.path
                for (name, value) in values { path = path.replacingOccurrences(of: "{\(name)}", with: value) }
                let answer: RawResponse
                switch route.bodyType {
                case "application/octet-stream"?:
                    answer = try await f.client.request(
                        route.method, path + "?offset=0", body: [1, 2, 3], headers: [("Content-Type", "application/octet-stream")])
                case "application/json"?:
                    answer = try await f.client.request(route.method, path, json: "{}")
                default:
                    answer = try await f.client.request(route.method, path)
                }
                #expect(answer.status == 404, "\(route) with an unknown {\(unknown)}: \(answer.text)")
                #expect(answer.code == 6, "\(route) with an unknown {\(unknown)}: \(answer.text)")
                #expect(answer.json["error"] as? String == "ERROR_INVALID_HANDLE", "\(route): \(answer.text)")
                #expect(answer.header("Content-Type") == "application/problem+json", "\(route)")
                walked += 1
            }
        }
        #expect(walked == routes.count)
        // The real handles still work: nothing above closed or spoiled them.
        #expect(try await f.client.request("GET", "/instances/\(h)/retrievals/\(retrieval)").status == 200)
        #expect(try await f.client.request("DELETE", "/instances/\(h)/ports/\(port)").status == 200)
        await retrievals.stop()
    }

    /// A closed retrieval's operation routes keep answering for the operations' retention (API.md,
    /// Retrieval); its other routes, and a retrieval that never existed, are 6.
    @Test func aClosedRetrievalKeepsItsOperationRoutesForRetention() async throws {
        let retrievals = try await RetrievalFixture.start()
        let f = retrievals.api
        let h = try await f.startup()
        try await f.publish(h, Self.id, Array(repeating: 7, count: 1_000))
        let info = try await f.client.request("GET", "/instances/\(h)/content/\(Self.id)/contentinfo?version=1")
        #expect(info.status == 200, "\(info.text)")
        let r = try #require(try await f.client.request(
            "POST", "/instances/\(h)/retrievals", json: #"{"contentTag":"00112233445566778899aabbccddeeff"}"#).json["retrieval"] as? String)
        let added = try await f.client.request(
            "POST", "/instances/\(h)/retrievals/\(r)/contentinfo?op=ci-1", body: info.body,
            headers: [("Prefer", "wait=5"), ("Content-Type", "application/octet-stream")])
        #expect(added.json["state"] as? String == "completed", "\(added.text)")
        #expect(try await f.client.request("DELETE", "/instances/\(h)/retrievals/\(r)").status == 200)

        let kept = try await f.client.request("GET", "/instances/\(h)/retrievals/\(r)/operations/ci-1")
        #expect(kept.status == 200, "\(kept.text)")
        let listed = try await f.client.request("GET", "/instances/\(h)/retrievals/\(r)/operations")
        #expect((listed.json["operations"] as? [[String: Any]])?.count == 1, "\(listed.text)")
        let ended = try await f.client.request("DELETE", "/instances/\(h)/retrievals/\(r)/operations/ci-1")
        #expect(ended.status == 404 && ended.code == 4059, "\(ended.text)")
        let otherOp = try await f.client.request("GET", "/instances/\(h)/retrievals/\(r)/operations/never")
        #expect(otherOp.status == 404 && otherOp.code == 4059, "\(otherOp.text)")

        let closed = try await f.client.request("GET", "/instances/\(h)/retrievals/\(r)")
        #expect(closed.status == 404 && closed.code == 6, "\(closed.text)")
        let unknown = try await f.client.request("GET", "/instances/\(h)/retrievals/\(r)x/operations/ci-1")
        #expect(unknown.status == 404 && unknown.code == 6, "\(unknown.text)")
        await retrievals.stop()
    }
}
