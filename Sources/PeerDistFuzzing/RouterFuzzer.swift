import HTTPServer
import HTTPWire
import Logging
import PCCRC
import PeerDistAPI
import PeerDistEngine

/// FuzzRouter: PeerDist's real route table matched against any method and path.
///
/// Input: `METHOD SP path` (no space: the whole input is a GET path).
///
/// Checks: a found route has the method asked (or GET for HEAD), as many segments as the path,
/// the path's literal segments, exactly its template's parameters, each the percent-decoding of
/// its raw segment (or the raw segment when that does not decode); a 405 lists methods that each
/// match the path and not the one asked; a 404 path is 404 for every method; percent-decoding of
/// every segment is stable.
public enum RouterFuzzer {
    static let router: Router = PeerDistServiceFactory.make(maxWaitMs: 1).router

    public static func run(_ buffer: UnsafeRawBufferPointer) {
        let input = Array(buffer)
        let method: HTTPMethod
        let path: Substring
        if let space = input.firstIndex(of: 0x20) {
            method = HTTPMethod(String(decoding: input[..<space], as: UTF8.self))
            path = Substring(String(decoding: input[(space + 1)...], as: UTF8.self))
        } else {
            method = .get
            path = Substring(String(decoding: input, as: UTF8.self))
        }
        let segments = path.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).dropFirst().map { Substring($0) }
        for segment in segments.prefix(64) { TargetChecks.checkDecoding(segment) }

        switch router.match(method, path: path) {
        case .found(let route, let parameters):
            fuzzCheck(route.method == method || (method == .head && route.method == .get),
                      "\(method) matched a \(route.method) route")
            let template = route.template.split(separator: "/")
            fuzzCheck(template.count == segments.count, "'\(path)' matched '\(route.template)' with another segment count")
            var names: Set<String> = []
            for (t, raw) in zip(template, segments) {
                if t.hasPrefix("{") {
                    let name = String(t.dropFirst().dropLast())
                    names.insert(name)
                    fuzzCheck(parameters[name] == PercentDecoding.decode(raw) ?? String(raw),
                              "parameter \(name) of '\(path)' is '\(parameters[name] ?? "nil")'")
                } else {
                    fuzzCheck(t.utf8.elementsEqual(raw.utf8), "literal '\(t)' matched segment '\(raw)'")
                }
            }
            fuzzCheck(Set(parameters.keys) == names, "parameters \(parameters.keys.sorted()) for '\(route.template)'")
        case .methodNotAllowed(let allow):
            fuzzCheck(!allow.isEmpty && allow == allow.sorted(), "405 with Allow \(allow)")
            fuzzCheck(!allow.contains(method.rawValue), "405 for \(method), yet Allow lists it")
            for name in allow {
                guard case .found = router.match(HTTPMethod(name), path: path) else {
                    fatalError("fuzz invariant broken: Allow lists \(name) for '\(path)', which it does not match")
                }
            }
        case .notImplemented:
            for other in [HTTPMethod.get, .post, .put, .delete] {
                if case .notImplemented = router.match(other, path: path) {
                    fatalError("fuzz invariant broken: \(other) is answered 501 (no route has that method)")
                }
            }
        case .notFound:
            for other in [HTTPMethod.get, .post, .put, .delete] {
                guard case .notFound = router.match(other, path: path) else {
                    fatalError("fuzz invariant broken: '\(path)' is 404 for \(method) but not for \(other)")
                }
            }
        }
    }
}

/// The PeerDist service as peerdistd builds it, over an engine with short waits and small bounds,
/// so that fuzzed requests reach the limits and never wait long.
enum PeerDistServiceFactory {
    static let adminToken = "fuzz-admin-token"

    static func make(maxWaitMs: Int) -> PeerDistService {
        var logger = Logger(label: "fuzz")
        logger.logLevel = .critical
        let limits = EngineLimits(
            maxInstances: 4, maxOperationsPerInstance: 32, maxPortsPerInstance: 4, maxWaitersPerPort: 4,
            maxWaitersPerOperation: 4, maxStatusWaitersPerInstance: 4, maxQueuedCompletionsPerPort: 16,
            maxStreamsPerInstance: 4, maxContentInfoHandlesPerInstance: 4, maxPublicationsPerInstance: 8,
            maxContentLength: 1 << 20, retention: .seconds(600), maxWait: .milliseconds(maxWaitMs),
            maxReadBytes: 1 << 16, appendWindowBytes: 1 << 16, hashingWorkers: 1, maxFaultDelay: .milliseconds(20))
        let engine = PeerDistEngine(secret: ServerSecret(keyBytes: Array("fuzzing secret bytes".utf8)), limits: limits)
        do {
            return try PeerDistService(
                settings: .init(dataDirectory: "/nonexistent", maxWaitMs: maxWaitMs, adminToken: adminToken, limits: limits),
                engine: engine, lifecycle: ServiceLifecycle(), logger: logger)
        } catch {
            preconditionFailure("the fuzzing service's constant settings are valid: \(error)")
        }
    }
}
