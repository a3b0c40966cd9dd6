@testable import HTTPServer
import HTTPWire
import Synchronization

/// Drives an `HTTP1ConnectionMachine` by hand, with no socket, no queue and no clock: bytes and
/// events in, and every action it asks for recorded, in order. By default the "kernel" takes each
/// write at once (its completion is reported during the write, as a socket with room does) and
/// sync handlers answer inline, as the exchange runner does; tests turn either off to hold them.
final class HTTP1MachineDriver {
    let machine: HTTP1ConnectionMachine
    /// The test's clock: events carry it; `advance` moves it.
    private(set) var now: ContinuousClock.Instant
    /// Whether writes complete during the write; else they wait in `pendingWrites`.
    var writesComplete = true
    /// Whether sync handlers answer during `invoke`; else every handler waits for `answer`.
    var syncHandlersInline = true
    /// Whether the registry refuses leaving idle (the connection was chosen for eviction).
    var refuseLeavingIdle = false
    /// Every action since `take()` last returned them.
    private var recent: [HTTP1Action] = []
    /// Everything written, in order.
    private(set) var written: [UInt8] = []
    private(set) var pendingWrites: [HTTP1WriteCompletion] = []
    /// The exchanges whose handlers were invoked, in order.
    private(set) var invoked: [(id: UInt64, request: Request)] = []
    /// Handlers cancelled, by exchange id.
    private(set) var cancelled: [UInt64] = []
    /// What a body stream's consumer asked (from any thread).
    let wakeups = Wakeups()

    final class Wakeups: Sendable {
        private let list = Mutex<[HTTP1Wakeup]>([])
        func append(_ wakeup: HTTP1Wakeup) { list.withLock { $0.append(wakeup) } }
        func withLock<R>(_ body: (inout [HTTP1Wakeup]) -> R) -> R { list.withLock { body(&$0) } }
    }

    static let date = "Tue, 01 Dec 2026 12:00:00 GMT"

    /// Echoes the request: `METHOD path body` (for the parser cases).
    static func echo(_ request: Request) -> Response {
        .json(200, "\(request.method) \(request.path) \(String(decoding: request.body.bytes, as: UTF8.self))")
    }

    static let routes: [Route] = [
        .sync(.get, "/hello") { _ in .json(200, #"{"hello":"world"}"#) },
        .sync(.post, "/buffered") { echo($0) },
        .async(.post, "/streamed", body: .streamed) { _ in .json(200, "{}") },
        .async(.get, "/wait", interruptibleOnDrain: true) { _ in .json(200, "{}") },
    ]

    init(routes: [Route] = HTTP1MachineDriver.routes, configure: (inout ServerConfiguration) -> Void = { _ in }) {
        var configuration = ServerConfiguration()
        configure(&configuration)
        let runner = ExchangeRunner(router: Router(routes), filters: [], compressionMinimumBytes: configuration.compressionMinimumBytes,
                                    tooManyRequestsDelay: configuration.tooManyRequestsDelay,
                                    observer: nil, errorRenderer: HTTPServer.defaultErrorRenderer)
        now = .now
        machine = HTTP1ConnectionMachine(configuration: configuration, runner: runner, bodies: RequestBodyPolicy(configuration),
                                         connectionID: 7, now: now, date: { Self.date })
        machine.perform = { [unowned self] action in self.record(action) }
        let wakeups = self.wakeups
        machine.wake = { wakeup in wakeups.append(wakeup) }
        machine.start(now: now)
    }

    private func record(_ action: HTTP1Action) {
        recent.append(action)
        switch action {
        case .write(let bytes, let completion):
            written += bytes
            if let completion {
                if writesComplete { machine.writeCompleted(completion, ok: true, now: now) } else { pendingWrites.append(completion) }
            }
        case .invoke(let exchange, let route):
            let (id, request) = (exchange.id, exchange.request)
            invoked.append((id, request))
            if syncHandlersInline, case .sync(let handler) = route.handler {
                let response = (try? handler(request)) ?? Response(status: 500)
                machine.handlerFinished(id, response, now: now)
            }
        case .cancelHandler(let id):
            cancelled.append(id)
        case .setIdle(false) where refuseLeavingIdle:
            machine.close(now: now)
        case .close:
            // The transport reports its close during the call.
            machine.connectionClosed(now: now)
        default:
            break
        }
    }

    // MARK: - Events

    func feed(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { machine.bytesRead($0, now: now) }
    }

    func feed(_ text: String) { feed(Array(text.utf8)) }

    /// Feeds one byte at a time.
    func drip(_ text: String) {
        for byte in Array(text.utf8) { feed([byte]) }
    }

    func advance(_ duration: Duration) { now += duration }

    /// Fires the armed timer (as its deadline passing would).
    func fireTimer(wroteSinceArmed: Bool = false) {
        machine.timerFired(now: now, wroteSinceArmed: wroteSinceArmed)
    }

    /// The handler of the `index`th invoked exchange answers.
    func answer(_ index: Int, _ response: Response) {
        machine.handlerFinished(invoked[index].id, response, now: now)
    }

    /// The kernel takes every write that waits.
    func completeWrites() {
        let waiting = pendingWrites
        pendingWrites.removeAll()
        for completion in waiting { machine.writeCompleted(completion, ok: true, now: now) }
    }

    /// Delivers the wakeups the body consumers asked for, as the driver's queue would.
    func deliverWakeups() {
        let pending = wakeups.withLock { w in
            defer { w.removeAll() }
            return w
        }
        for wakeup in pending { machine.wakeup(wakeup, now: now) }
    }

    // MARK: - What happened

    /// The actions since the last call, each in short: `write 200`, `timer head 10s`, `invoke GET /hello`…
    func take() -> [String] {
        defer { recent.removeAll() }
        return recent.map(describe)
    }

    private func describe(_ action: HTTP1Action) -> String {
        switch action {
        case .write(let bytes, _):
            let status = bytes.starts(with: "HTTP/1.1 ".utf8) ? String(decoding: bytes.dropFirst(9).prefix(3), as: UTF8.self) : "?"
            return "write \(status)"
        case .closeAfterFlush: return "closeAfterFlush"
        case .close: return "close"
        case .pauseReading: return "pause"
        case .resumeReading: return "resume"
        case .setTimer(let delay, let kind):
            let ms = delay / .milliseconds(1)
            return ms.truncatingRemainder(dividingBy: 1000) == 0 ? "timer \(kind) \(Int(ms / 1000))s" : "timer \(kind) \(Int(ms))ms"
        case .clearTimer: return "clearTimer"
        case .setIdle(let idle): return idle ? "idle" : "busy"
        case .invoke(let exchange, _): return "invoke \(exchange.request.method) \(exchange.request.path)"
        case .hold(_, let response): return "hold \(response.status)"
        case .cancelHandler: return "cancel"
        case .responded(_, let status, _): return "responded \(status)"
        case .undelivered: return "undelivered"
        case .writeStalled: return "writeStalled"
        case .handOff(.priorKnowledge(_, let received)): return "handOff prior-knowledge \(received.count)"
        case .handOff(.upgrade(_, let head, let received)): return "handOff upgrade \(head.method) \(head.target) \(received.count)"
        }
    }

    var output: String { String(decoding: written, as: UTF8.self) }

    /// The output without its `X-Request-Id` lines (their prefix is random per runner).
    var stableOutput: String {
        output.split(separator: "\r\n", omittingEmptySubsequences: false).filter { !$0.hasPrefix("X-Request-Id:") }
            .joined(separator: "\r\n")
    }

    /// The status of every response written, in order (interim ones included).
    var statuses: [Int] {
        output.components(separatedBy: "HTTP/1.1 ").dropFirst().compactMap { Int($0.prefix(3)) }
    }

    /// The bodies of the final responses written, in order.
    var bodies: [String] {
        output.components(separatedBy: "HTTP/1.1 ").dropFirst().filter { !$0.hasPrefix("100 ") }.map {
            $0.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
        }
    }

    var invokedPaths: [String] { invoked.map { String($0.request.path) } }
}
