@testable import HTTPServer
import HTTPWire
import ServerTesting
import Synchronization
import Testing

/// The request-body core alone, as both protocols drive it: bytes and instants in, answers and
/// credit out. No socket, no clock.
@Suite struct ExchangeBodyTests {
    static let t0 = ContinuousClock.now

    static func policy(bodyTimeout: Duration = .seconds(30), minRate: Int = 240, maxBodySize: Int = 1_048_576) -> RequestBodyPolicy {
        var configuration = ServerConfiguration()
        configuration.bodyTimeout = bodyTimeout
        configuration.minBodyDataRate = minRate
        configuration.maxBodySize = maxBodySize
        return RequestBodyPolicy(configuration)
    }

    static func request(_ fields: HTTPFields = HTTPFields()) -> Request {
        Request(method: .post, target: "/b", version: .http2, headers: fields, acceptsGzip: false, connectionID: 1)
    }

    static func buffered(_ policy: RequestBodyPolicy, declared: UInt64? = nil, fields: HTTPFields = HTTPFields()) -> ExchangeBody {
        var body = ExchangeBody(policy: policy, now: t0, discardAllowance: .max)
        guard case .buffer = body.open(for: request(fields), bodyMode: .buffered, declaredLength: declared, ended: false,
                                       makeStream: { _ in fatalError("not streamed") }) else {
            Issue.record("not buffered")
            return body
        }
        return body
    }

    /// Delivers `bytes` as one frame at `now`: the refusal, and the credit that goes back.
    static func frame(_ body: inout ExchangeBody, _ bytes: [UInt8], at now: ContinuousClock.Instant,
                      budget: inout BodyBudget) -> (refusal: HTTPError?, credit: Int) {
        body.arrived(bytes.count, now: now)
        let refusal = bytes.withUnsafeBytes { body.deliver($0, now: now, budget: &budget) }
        return (refusal, body.credit(bytes.count, now: now, budget: budget))
    }

    /// 11 of 100,000 declared bytes, then nothing: the rate checks find no fault while the
    /// grace runs, and the body is cut (408) at the body timeout, not before.
    @Test func stalledBodyIsCutAtTheBodyTimeout() {
        var budget = BodyBudget(cap: 4 << 20, window: 1 << 20)
        var body = Self.buffered(Self.policy(bodyTimeout: .seconds(3)), declared: 100_000)
        let sent = Self.frame(&body, Array(repeating: 0x7B, count: 11), at: Self.t0, budget: &budget)
        #expect(sent.refusal == nil)
        #expect(sent.credit == 11)
        var now = Self.t0
        var cut: HTTPError?
        var checks = 0
        while cut == nil && checks < 100 {
            now = body.deadline(now: now)
            cut = body.timerFired(now: now)
            checks += 1
        }
        #expect(cut?.status == 408)
        #expect(cut?.detail == "request body not received in time")
        #expect(now - Self.t0 == .seconds(3), "cut after \(now - Self.t0)")
    }

    /// A body trickling 10 bytes a second is cut by the minimum rate (240 B/s) once the 5 s grace
    /// has passed, long before the body timeout; one sending at 1,000 B/s is not.
    @Test func tricklingBodyIsCutByTheMinimumRate() {
        func run(bytesPerSecond: Int) -> (HTTPError?, Duration) {
            var budget = BodyBudget.unbounded
            var body = Self.buffered(Self.policy(bodyTimeout: .seconds(30)))
            var now = Self.t0
            for second in 0..<20 {
                now = Self.t0 + .seconds(second)
                _ = Self.frame(&body, Array(repeating: 1, count: bytesPerSecond), at: now, budget: &budget)
                while body.deadline(now: now) <= Self.t0 + .seconds(second + 1) {
                    now = body.deadline(now: now)
                    if let cut = body.timerFired(now: now) { return (cut, now - Self.t0) }
                }
            }
            return (nil, now - Self.t0)
        }
        let slow = run(bytesPerSecond: 10)
        #expect(slow.0?.status == 408)
        #expect(slow.0?.detail == "request body arrives slower than 240 bytes/s")
        #expect(slow.1 > .seconds(5) && slow.1 <= .seconds(7), "cut after \(slow.1)")
        #expect(run(bytesPerSecond: 1_000).0 == nil)
    }

    /// The connection's budget: credit goes back while what is held stays under the cap less the
    /// window; past it, the body that crossed it (and every later one) holds its credit, which
    /// goes back once another body is handed to its handler.
    @Test func bufferedBytesCapHoldsCreditUntilABodyIsTaken() {
        var budget = BodyBudget(cap: 100, window: 40)
        #expect(budget.creditLimit == 60)
        var a = Self.buffered(Self.policy())
        var b = Self.buffered(Self.policy())
        #expect(Self.frame(&a, Array(repeating: 1, count: 50), at: Self.t0, budget: &budget).credit == 50)
        #expect(Self.frame(&b, Array(repeating: 2, count: 20), at: Self.t0, budget: &budget).credit == 0)
        #expect(budget.held == 70)
        #expect(b.isWaitingForBudget)
        #expect(b.heldCredit == 20)
        // Still spent: a retry gives nothing.
        #expect(b.retryCredit(now: Self.t0, budget: &budget) == 0)
        // `a` ends: its bytes go to the handler and leave the budget; `b`'s credit goes back.
        guard case .buffered(let bytes) = a.finish(budget: &budget) else {
            Issue.record("a not handed over")
            return
        }
        #expect(bytes.count == 50)
        #expect(budget.held == 20)
        #expect(b.retryCredit(now: Self.t0 + .seconds(1), budget: &budget) == 20)
        #expect(!b.isWaitingForBudget)
        // A body dropped gives back what it held, bytes and credit.
        _ = Self.frame(&b, Array(repeating: 2, count: 50), at: Self.t0, budget: &budget)
        #expect(budget.held == 70)
        #expect(b.drop(allowance: .max, budget: &budget, now: Self.t0) == 50)
        #expect(budget.held == 0)
    }

    /// A gzip bomb (1 GiB of zeros in about 1 MiB) for a buffered route is refused (413) as it
    /// inflates, holding no more than the body limit, and leaves nothing in the budget.
    @Test func gzipBombIsRefusedAsItInflates() {
        var budget = BodyBudget(cap: 4 << 20, window: 1 << 20)
        var body = Self.buffered(Self.policy(), fields: ["Content-Encoding": "gzip"])
        #expect(body.inflater != nil)
        let bomb = gzipOfZeros(count: 1 << 30)
        var refusal: HTTPError?
        var offset = 0
        var credit = 0
        while refusal == nil && offset < bomb.count {
            let n = min(16_384, bomb.count - offset)
            let step = Self.frame(&body, Array(bomb[offset..<offset + n]), at: Self.t0, budget: &budget)
            refusal = step.refusal
            credit += step.credit
            offset += n
            #expect(budget.held <= 1_048_576)
        }
        #expect(refusal?.status == 413)
        #expect(offset < bomb.count)
        #expect(budget.held == 0)
        #expect(body.isDiscarding)
        // What follows is dropped, its credit given back at once.
        #expect(Self.frame(&body, Array(repeating: 0, count: 100), at: Self.t0, budget: &budget).credit == 100)
        #expect(credit == offset)
    }

    /// A streamed body: credit goes back while the handler's buffer has room; once it is full the
    /// credit is held, and goes back only when the handler has read (its drain wakes the body).
    @Test func creditGoesBackOnlyAsTheHandlerReads() async throws {
        var budget = BodyBudget(cap: 4 << 20, window: 1 << 20)
        let drained = Atomic<Int>(0)
        var body = ExchangeBody(policy: Self.policy(), now: Self.t0, discardAllowance: .max)
        let opening = body.open(for: Self.request(), bodyMode: .streamed, declaredLength: 3_000, ended: false) { declared in
            BodyStream(declaredLength: declared, capacity: 1_000, resumeProducer: { drained.add(1, ordering: .relaxed) })
        }
        guard case .stream(let stream) = opening else {
            Issue.record("not streamed")
            return
        }
        #expect(Self.frame(&body, Array(repeating: 1, count: 800), at: Self.t0, budget: &budget).credit == 800)
        #expect(Self.frame(&body, Array(repeating: 2, count: 800), at: Self.t0, budget: &budget).credit == 0)
        #expect(body.isPaused)
        #expect(budget.held == 1_600)
        // More bytes while paused: held too.
        #expect(Self.frame(&body, Array(repeating: 3, count: 100), at: Self.t0, budget: &budget).credit == 0)
        #expect(body.heldCredit == 900)
        // The handler reads one chunk: still above half the capacity, no wakeup yet.
        #expect(try await stream.next()?.count == 800)
        #expect(drained.load(ordering: .relaxed) == 0)
        #expect(try await stream.next()?.count == 800)
        #expect(drained.load(ordering: .relaxed) == 1)
        // The wakeup: the body resumes and the held credit goes back, the budget follows the reads.
        #expect(body.resume(now: Self.t0 + .seconds(1), budget: &budget) == nil)
        #expect(!body.isPaused)
        #expect(body.resumedCredit(now: Self.t0 + .seconds(1), budget: budget) == 900)
        #expect(budget.held == 100)
    }
}

/// The answer's framing, as both protocols apply it: the body goes out only where it may, the
/// hop-by-hop fields never do, and a commit is a delivery only when the body was sent.
@Suite struct ResponseFramingTests {
    static func committed(_ method: HTTPMethod, _ status: Int, writeOK: Bool = true) -> (ResponseFraming, Bool?) {
        let seen = Mutex<Bool?>(nil)
        var response = Response.json(status, #"{"completions":[1]}"#)
        response.headers.append(name: "Connection", value: "keep-alive")
        response.onWritten = { ok in seen.withLock { $0 = ok } }
        let framing = ResponseFraming(response, method: method)
        framing.commit?(writeOK)
        return (framing, seen.withLock { $0 })
    }

    @Test func bodyIsSentAndCommittedOnlyWhereItMayBe() {
        let get = Self.committed(.get, 200)
        #expect(get.0.sendsBody && get.1 == true && get.0.sentBodyBytes == get.0.contentLength)
        #expect(!get.0.fields.contains("Connection"))
        // HEAD, 204, 304: no body went out, so the completions it carried were not delivered.
        for (method, status) in [(HTTPMethod.head, 200), (.get, 204), (.get, 304)] {
            let answer = Self.committed(method, status)
            #expect(!answer.0.sendsBody && answer.0.sentBodyBytes == 0, "\(method) \(status)")
            #expect(answer.1 == false, "\(method) \(status) committed as delivered")
        }
        #expect(Self.committed(.get, 200, writeOK: false).1 == false)
    }
}
