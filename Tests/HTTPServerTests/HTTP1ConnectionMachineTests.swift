@testable import HTTPServer
import HTTPWire
import ServerTesting
import Testing

/// The HTTP/1.1 machine alone: bytes and events in, the action list checked. No socket, no
/// queue, no clock (the test's own instant moves only when the test says).
@Suite struct HTTP1ConnectionMachineTests {
    typealias Driver = HTTP1MachineDriver

    static let get = "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"

    // MARK: - Heads and pipelining

    /// A head fed one byte at a time starts nothing until its last byte; then the exchange runs
    /// and the connection waits for the next request, exactly as when fed whole.
    @Test func dripFedHead() {
        let whole = Driver()
        #expect(whole.take() == ["idle", "timer head 10s"])
        whole.feed(Self.get)
        let wholeActions = whole.take()

        let d = Driver()
        _ = d.take()
        let bytes = Array(Self.get.utf8)
        for b in bytes.dropLast() { d.feed([b]) }
        #expect(d.take() == ["busy"])  // the head timer armed at accept still runs
        #expect(d.invoked.isEmpty && d.written.isEmpty)
        d.feed([bytes[bytes.count - 1]])
        let expected = ["busy", "clearTimer", "invoke GET /hello", "write 200", "timer idle 60s", "resume", "responded 200", "idle"]
        #expect(["busy"] + d.take() == expected)
        #expect(wholeActions == expected)
        #expect(d.stableOutput == whole.stableOutput)
        #expect(d.output.contains("Date: \(Driver.date)\r\n"))
        #expect(d.bodies == [#"{"hello":"world"}"#])
    }

    /// Pipelined requests are taken one at a time: the next begins only once the previous answer
    /// is written, so answers leave in request order even when the first handler waits.
    @Test func pipelinedAnsweredInOrder() {
        let d = Driver()
        d.writesComplete = false
        d.feed("GET /wait HTTP/1.1\r\nHost: t\r\n\r\n" + Self.get
               + "POST /buffered HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi")
        #expect(d.invokedPaths == ["/wait"])
        d.answer(0, .json(200, "first"))
        #expect(d.invokedPaths == ["/wait"])  // its answer is not written yet
        #expect(d.take().suffix(3) == ["write 200", "timer writeStall 30s", "responded 200"])
        d.completeWrites()
        #expect(d.invokedPaths == ["/wait", "/hello"])
        d.completeWrites()
        #expect(d.invokedPaths == ["/wait", "/hello", "/buffered"])
        d.completeWrites()
        #expect(d.bodies == ["first", #"{"hello":"world"}"#, "POST /buffered hi"])
        #expect(d.take().last == "idle")
    }

    /// Every case of the head parser's table, fed whole and one byte at a time through the
    /// machine: requests are served in order with their bodies and persistence, errors are
    /// answered with their status and the connection closes, serving nothing more.
    @Test(arguments: HeadParserCase.all)
    func parserCases(_ c: HeadParserCase) {
        // "/{root}": a template "/" matches no path (the router splits "/" into one empty segment).
        let routes = ["/healthz", "/{root}", "/x", "/c", "/1", "/2", "/3"].flatMap { path in
            [Route.sync(.get, path) { Driver.echo($0) }, Route.sync(.post, path) { Driver.echo($0) }]
        }
        let whole = Driver(routes: routes)
        whole.feed(c.input)
        let drip = Driver(routes: routes)
        drip.drip(c.input)
        #expect(drip.stableOutput == whole.stableOutput)
        for d in [whole, drip] {
            switch c.expected {
            case .status(let status):
                #expect(d.statuses == [status])
                #expect(d.invoked.isEmpty)
                #expect(d.output.contains("Connection: close\r\n"))
                #expect(d.take().contains("closeAfterFlush"))
                let before = d.written
                d.feed(Self.get)
                #expect(d.written == before, "served after an error")
            case .requests(let requests):
                #expect(d.invoked.map { "\($0.request.method) \($0.request.target)" } == requests.map { "\($0.method) \($0.target)" })
                #expect(d.bodies == requests.map { "\($0.method) \($0.target) \($0.body)" })
                let closes = d.take().contains("closeAfterFlush")
                #expect(closes == !(requests.last?.keepAlive ?? true))
            }
        }
    }

    /// `Connection: close`: the answer says so, the connection closes after it, and a request
    /// pipelined behind it is not served.
    @Test func connectionClose() {
        let d = Driver()
        d.feed("GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" + Self.get)
        #expect(d.invokedPaths == ["/hello"])
        #expect(d.statuses == [200])
        #expect(d.output.contains("Connection: close\r\n"))
        #expect(d.take().contains("closeAfterFlush"))
    }

    // MARK: - Bodies

    /// A chunked body, drip-fed, reaches a buffered handler whole (extensions and trailers skipped).
    @Test func chunkedBody() {
        let d = Driver()
        d.drip("POST /buffered HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n")
        #expect(d.bodies == ["POST /buffered hello world"])
        #expect(!d.take().contains("closeAfterFlush"))
    }

    /// A malformed chunk is answered 400 and the connection closes: the stream cannot be trusted.
    @Test func malformedChunkClosed() {
        let d = Driver()
        d.feed("POST /buffered HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n" + Self.get)
        #expect(d.statuses == [400])
        #expect(d.invoked.isEmpty)
        #expect(d.take().contains("closeAfterFlush"))
    }

    /// A streamed body beyond the handler's buffer pauses reading; the handler draining it
    /// resumes reading and the rest is delivered.
    @Test func streamedBodyBackpressure() async throws {
        let d = Driver { $0.streamingBodyBuffer = 4 }
        d.feed("POST /streamed HTTP/1.1\r\nHost: t\r\nContent-Length: 12\r\n\r\nabcdefgh")
        #expect(d.invokedPaths == ["/streamed"])
        #expect(d.take().contains("pause"))
        guard case .stream(let stream) = d.invoked[0].request.body else {
            Issue.record("no body stream")
            return
        }
        var received: [UInt8] = []
        while received.count < 8, let chunk = try await stream.next() { received += chunk }
        #expect(await eventually { d.wakeups.withLock { $0.contains { if case .bodyDrained = $0 { true } else { false } } } })
        d.deliverWakeups()
        #expect(d.take().contains("resume"))
        d.feed("ijkl")
        while let chunk = try await stream.next() { received += chunk }
        #expect(String(decoding: received, as: UTF8.self) == "abcdefghijkl")
    }

    /// A handler that refuses a streamed body early is answered at once; the rest of the body is
    /// skipped (the write-stall timer still guards the answer), and the connection serves on.
    @Test func earlyAnswerSkipsTheBody() {
        let d = Driver()
        d.writesComplete = false
        d.feed("POST /streamed HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        d.answer(0, ProblemResponse.make(.http(413, "no")))
        #expect(d.statuses == [413])
        _ = d.take()
        d.feed("defghij")
        #expect(d.take() == ["timer writeStall 30s"])
        d.completeWrites()
        d.feed(Self.get)
        #expect(d.statuses == [413, 200])
    }

    // MARK: - 100-continue

    /// A buffered handler's body is asked for at once; a streamed one's only when its handler
    /// reads; a handler that refuses from the head gets no 100 and the connection closes.
    @Test func expectContinue() async throws {
        let buffered = Driver()
        buffered.feed("POST /buffered HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        #expect(buffered.statuses == [100])
        buffered.feed("hello")
        #expect(buffered.statuses == [100, 200])
        #expect(buffered.bodies == ["POST /buffered hello"])

        let streamed = Driver()
        streamed.feed("POST /streamed HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        #expect(streamed.invokedPaths == ["/streamed"])
        #expect(streamed.written.isEmpty)
        guard case .stream(let stream) = streamed.invoked[0].request.body else {
            Issue.record("no body stream")
            return
        }
        let reader = Task { try await stream.next() }
        #expect(await eventually { !streamed.wakeups.withLock { $0.isEmpty } })
        streamed.deliverWakeups()
        #expect(streamed.statuses == [100])
        streamed.feed("hello")
        #expect(try await reader.value == Array("hello".utf8))

        let refused = Driver()
        refused.feed("POST /streamed HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        refused.answer(0, ProblemResponse.make(.http(413, "no")))
        #expect(refused.statuses == [413])
        #expect(refused.output.contains("Connection: close\r\n"))
        #expect(refused.take().contains("closeAfterFlush"))
    }

    // MARK: - Timeouts

    /// The head timeout: a silent connection closes without a word; a partial head gets 408.
    @Test func headTimeout() {
        let silent = Driver()
        _ = silent.take()
        silent.advance(.seconds(10))
        silent.fireTimer()
        #expect(silent.take() == ["close"])
        #expect(silent.written.isEmpty)

        let partial = Driver()
        partial.feed("GET /hello HTTP/1.1\r\nHo")
        _ = partial.take()
        partial.advance(.seconds(10))
        partial.fireTimer()
        #expect(partial.statuses == [408])
        #expect(partial.take().contains("closeAfterFlush"))
    }

    /// A later request's head timeout runs from its first byte, not from the previous answer.
    @Test func headTimeoutOfAKeepAliveRequest() {
        let d = Driver()
        d.feed(Self.get)
        d.advance(.seconds(30))
        _ = d.take()
        d.feed("GET /he")
        #expect(d.take() == ["busy", "timer head 10s"])
    }

    /// Keep-alive: after an answer the idle timer runs; when it fires the connection closes.
    @Test func keepAliveIdleTimeout() {
        let d = Driver()
        d.feed(Self.get)
        #expect(d.take().contains("timer idle 60s"))
        d.advance(.seconds(60))
        d.fireTimer()
        #expect(d.take() == ["close"])
    }

    /// The body timeout: no body byte for `bodyTimeout` is a 408; a check before then re-arms.
    @Test func bodyTimeout() {
        let d = Driver { $0.minBodyDataRate = 0 }
        d.feed("POST /buffered HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        #expect(d.take().last == "timer body 30s")
        d.advance(.seconds(10))
        d.fireTimer()
        #expect(d.take() == ["timer body 20s"])
        d.advance(.seconds(20))
        d.fireTimer()
        #expect(d.statuses == [408])
        #expect(d.output.contains("request body not received in time"))
        #expect(d.take().contains("closeAfterFlush"))
    }

    /// The minimum data rate: a body trickling below it is cut once the grace period has passed;
    /// one arriving fast enough is not. The rate is checked every second, reads or not.
    @Test func slowBodyCutByMinimumRate() {
        func upload(bytesPerSecond: Int) -> Driver {
            let d = Driver {
                $0.minBodyDataRate = 100
                $0.minBodyDataRateGrace = .seconds(2)
            }
            d.feed("POST /buffered HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n" + String(repeating: "a", count: bytesPerSecond))
            #expect(d.take().last == "timer body 1s")
            for _ in 0..<3 {
                d.advance(.seconds(1))
                d.fireTimer()
                d.feed(String(repeating: "a", count: bytesPerSecond))
            }
            return d
        }
        let slow = upload(bytesPerSecond: 10)
        #expect(slow.statuses == [408])
        #expect(slow.output.contains("slower than 100 bytes/s"))
        let fast = upload(bytesPerSecond: 1_000)
        #expect(fast.written.isEmpty)
        #expect(fast.take().last == "timer body 1s")
    }

    /// The write stall: a response the client takes nothing of for `writeTimeout` closes the
    /// connection; any progress re-arms the timer.
    @Test func writeStall() {
        let d = Driver()
        d.writesComplete = false
        d.feed(Self.get)
        #expect(d.take().contains("timer writeStall 30s"))
        d.advance(.seconds(30))
        d.fireTimer(wroteSinceArmed: true)
        #expect(d.take() == ["timer writeStall 30s"])
        d.advance(.seconds(30))
        d.fireTimer(wroteSinceArmed: false)
        #expect(d.take() == ["writeStalled", "close", "cancel"])
        #expect(d.machine.isClosed)
    }

    /// Drain: an idle connection closes at once; a long-poll in flight is interrupted, and its
    /// answer closes the connection after it.
    @Test func drain() {
        let idle = Driver()
        _ = idle.take()
        idle.drain()
        #expect(idle.take() == ["close"])

        let busy = Driver()
        busy.feed("GET /wait HTTP/1.1\r\nHost: t\r\n\r\n")
        _ = busy.take()
        busy.drain()
        #expect(busy.take() == ["cancel"])
        #expect(busy.cancelled == [busy.invoked[0].id])
        busy.answer(0, .json(200, "{}"))
        #expect(busy.output.contains("Connection: close\r\n"))
        #expect(busy.take().contains("closeAfterFlush"))
    }

    /// An early answer whose write completes only after the drain began: the connection closes
    /// then, instead of skipping a body its client may never send until the body timeout.
    @Test func drainClosesWhenAnEarlyAnswersWriteCompletesAfterIt() {
        let d = Driver()
        d.writesComplete = false
        d.feed("POST /streamed HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        d.answer(0, ProblemResponse.make(.http(413, "no")))
        #expect(d.statuses == [413])
        _ = d.take()
        d.drain()
        #expect(!d.take().contains("close"))  // the answer is not yet out
        d.completeWrites()
        #expect(d.take().contains("close"))
    }

    /// The drain timeout (the server's, past which it closes what is left): a handler that does
    /// not stop for drain is cancelled when its connection closes, and its late answer is not sent.
    @Test func drainTimeoutClosesWhatIsLeft() {
        let d = Driver(routes: [.async(.post, "/work") { _ in .json(200, "{}") }])
        d.feed("POST /work HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
        d.drain()
        #expect(d.cancelled.isEmpty)  // not interruptible: it may finish in the drain time
        _ = d.take()
        d.machine.close(now: d.now)
        #expect(d.take() == ["close", "cancel"])
        d.answer(0, .json(200, "{}"))
        #expect(d.take() == ["undelivered"])
        #expect(d.written.isEmpty)
    }

    /// While a request is served, later pipelined bytes wait; past their bound reading pauses,
    /// and resumes once the request is answered.
    @Test func pipelinedInputBounded() {
        let d = Driver {
            $0.maxPipelinedBytes = 64
            $0.parserLimits = HTTPWireLimits(maxHeadBytes: 128, maxHeaderCount: 16, maxTargetLength: 64, maxTrailerBytes: 64)
        }
        d.feed("GET /wait HTTP/1.1\r\nHost: t\r\n\r\n")
        d.feed(String(repeating: Self.get, count: 6))  // 192 bytes: not past 64 + 128
        #expect(!d.take().contains("pause"))
        d.feed(Self.get)
        #expect(d.take().contains("pause"))
        d.answer(0, .json(200, "{}"))
        #expect(d.take().contains("resume"))
        #expect(d.statuses == Array(repeating: 200, count: 8))
    }

    // MARK: - The peer

    /// EOF inside a body closes without an answer; after a whole request, a waiting handler is
    /// stopped and its answer still goes out, closing after it.
    @Test func endOfInput() {
        let cut = Driver()
        cut.feed("POST /buffered HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        cut.finish()
        #expect(cut.take().contains("close"))
        #expect(cut.written.isEmpty)

        let half = Driver()
        half.feed("GET /wait HTTP/1.1\r\nHost: t\r\n\r\n")
        half.finish()
        #expect(half.cancelled.count == 1)
        half.answer(0, .json(200, "{}"))
        #expect(half.statuses == [200])
        #expect(half.output.contains("Connection: close\r\n"))
    }

    /// A connection chosen for eviction while idle serves nothing of what then arrives.
    @Test func evictedWhileIdle() {
        let d = Driver()
        d.refuseLeavingIdle = true
        _ = d.take()
        d.feed(Self.get)
        #expect(d.take() == ["busy", "close"])
        #expect(d.invoked.isEmpty && d.written.isEmpty)
    }

    /// An answer that comes after its connection closed is not sent, and says so (its long-poll
    /// completions go back).
    @Test func lateAnswerUndelivered() {
        let d = Driver()
        d.feed("GET /wait HTTP/1.1\r\nHost: t\r\n\r\n")
        d.machine.connectionClosed(now: d.now)
        #expect(d.cancelled.count == 1)
        _ = d.take()
        d.answer(0, .json(200, "{}"))
        #expect(d.take() == ["undelivered"])
        #expect(d.written.isEmpty)
    }

    // MARK: - h2c

    /// `Upgrade: h2c` on the first request hands the connection to HTTP/2 with that request and
    /// the bytes after it; the machine then takes nothing more.
    @Test func upgradeHandOff() {
        let d = Driver()
        _ = d.take()
        d.feed("GET /hello HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
               + "HTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\nPRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        #expect(d.take() == ["busy", "clearTimer", "clearTimer", "handOff upgrade GET /hello 24"])
        #expect(d.invoked.isEmpty && d.written.isEmpty)
        d.feed(Self.get)
        #expect(d.take().isEmpty)
    }

    /// The HTTP/2 preface, even drip-fed, hands the connection over with every byte received;
    /// after a first HTTP/1.1 request it is no longer taken.
    @Test func priorKnowledgeHandOff() {
        let preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
        let d = Driver()
        _ = d.take()
        d.drip(preface)
        #expect(d.take() == ["busy", "clearTimer", "handOff prior-knowledge 24"])

        let late = Driver()
        late.feed(Self.get + preface)
        #expect(!late.take().contains { $0.hasPrefix("handOff") })
        #expect(late.statuses.count == 2)
        #expect(late.statuses.last.map { $0 >= 400 } == true)
    }
}

extension HTTP1MachineDriver {
    func drain() { machine.drain(now: now) }
    func finish() { machine.peerFinishedSending(now: now) }
}
