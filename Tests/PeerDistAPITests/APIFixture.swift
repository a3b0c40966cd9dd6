import Foundation
import HTTPServer
import Logging
import PCCRC
import PeerDistAPI
import PeerDistEngine
import ServerTesting
import Testing

/// A live PeerDist server on port 0 with a known secret, and a keep-alive client.
struct APIFixture {
    static let secret = Array("no more secrets".utf8)

    let server: TestServer
    let engine: PeerDistEngine
    let client: RawHTTPClient
    let service: PeerDistService

    /// `allowedHosts` is `*` unless a test says otherwise: the raw requests of these tests name
    /// arbitrary hosts (`Host: t`); the Host check of an open service has tests of its own
    /// (`AccessTests`), which pass `[]`, the daemon's default.
    static func start(adminToken: String? = nil, tokens: TokenTable? = nil, allowedHosts: [String] = ["*"], limits: EngineLimits = EngineLimits(),
                      maxWaitMs: Int = 55_000, configuration: ServerConfiguration = ServerConfiguration(), metricsToken: String? = nil,
                      metricsPrincipals: Bool = false) async throws -> APIFixture {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        var limits = limits
        limits.maxWait = .milliseconds(maxWaitMs)
        let engine = PeerDistEngine(secret: ServerSecret(keyBytes: secret), limits: limits)
        let service = try PeerDistService(
            settings: .init(dataDirectory: NSTemporaryDirectory(), maxWaitMs: maxWaitMs, adminToken: adminToken, tokens: tokens,
                            allowedHosts: allowedHosts, limits: limits, metricsToken: metricsToken, metricsPrincipals: metricsPrincipals),
            engine: engine, lifecycle: ServiceLifecycle(), logger: logger)
        // The client below connects now and may send its first request only after a busy
        // machine has run other tests for a while: the head timeout, which runs from accept, is
        // widened here, and the minimum body rate, which a test holding an upload half-sent
        // would fall below once a busy machine has made it wait past the grace period, is off
        // (both are tested in HTTPServerTests).
        var configuration = configuration
        configuration.headerTimeout = .seconds(120)
        configuration.minBodyDataRate = 0
        let server = try TestServer(router: service.router, configuration: configuration, observer: service,
                                    filters: service.filters, errorRenderer: service.errorRenderer)
        return APIFixture(server: server, engine: engine, client: try await server.client(), service: service)
    }

    func stop() async { await server.stop() }

    /// A second connection (for a waiter parked while this one works).
    func newClient() async throws -> RawHTTPClient { try await server.client() }

    func startup() async throws -> String {
        let r = try await client.request("POST", "/instances", json: #"{"version":2}"#)
        #expect(r.status == 201)
        return try #require(r.json["handle"] as? String)
    }

    func openStream(_ h: String, _ id: String, length: Int = 0, version: Int = 1) async throws -> String {
        let r = try await client.request("POST", "/instances/\(h)/content/\(id)/streams", json: #"{"contentLength":\#(length),"version":\#(version)}"#)
        #expect(r.status == 201, "\(r.text)")
        return try #require(r.json["stream"] as? String)
    }

    /// Publishes `content` in one append and completes it, waiting for both to end.
    func publish(_ h: String, _ id: String, _ content: [UInt8], streamJSON: String = #"{"version":1}"#) async throws {
        let r = try await client.request("POST", "/instances/\(h)/content/\(id)/streams", json: streamJSON)
        let s = try #require(r.json["stream"] as? String, "\(r.text)")
        let append = try await client.request("POST", "/instances/\(h)/content/\(id)/streams/\(s)/data", body: content, headers: [("Prefer", "wait=10")])
        #expect(append.json["state"] as? String == "completed", "\(append.text)")
        let done = try await client.request("POST", "/instances/\(h)/content/\(id)/streams/\(s)/complete", headers: [("Prefer", "wait=10")])
        #expect(done.json["state"] as? String == "completed", "\(done.text)")
    }

    func setFaults(_ json: String) async throws {
        let r = try await client.request("PUT", "/admin/faults", json: json)
        #expect(r.status == 200, "\(r.text)")
    }

    static func contentID(_ text: String) -> String {
        Data(text.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}

extension RawResponse {
    var operation: [String: Any] { json["operation"] as? [String: Any] ?? [:] }
    var code: Int? { json["code"] as? Int }
}

extension Dictionary where Key == String, Value == Any {
    var resultCode: Int? { (self["result"] as? [String: Any])?["code"] as? Int }
}
