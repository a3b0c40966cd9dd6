import CNGHTTP2
import HTTP2Wire
import HTTPWire
import Testing

@Suite struct HTTP2ServerSessionTests {
    @Test func simpleGetIsAnsweredAndItsEndOffsetIsReported() throws {
        let pair = H2Pair()
        let id = pair.client.request("GET", path: "/healthz?x=1", headers: [("user-agent", "t"), ("cookie", "a=1"), ("cookie", "b=2")])
        pair.pump()
        let requests = pair.requests()
        try #require(requests.count == 1)
        let head = requests[0].head
        #expect(requests[0].stream == id)
        #expect(requests[0].endStream)
        #expect(head.method == .get)
        #expect(head.path == "/healthz?x=1")
        #expect(head.scheme == "http")
        #expect(head.authority == "example.test")
        #expect(head.fields["host"] == "example.test")
        #expect(head.fields["user-agent"] == "t")
        #expect(head.fields.values("cookie") == ["a=1; b=2"])

        try pair.server.respond(stream: id, status: 200, fields: ["Content-Type": "text/plain", "Connection": "close", "Transfer-Encoding": "chunked"],
                                body: .whole(Array("ok".utf8)))
        pair.pump()
        let response = try #require(pair.client.responses[id])
        #expect(response.status == 200)
        #expect(String(decoding: response.body, as: UTF8.self) == "ok")
        #expect(response.headers.contains { $0 == ("content-type", "text/plain") })
        #expect(!response.headers.contains { $0.0 == "connection" || $0.0 == "transfer-encoding" })
        #expect(pair.closes()[id] == .completed)

        // The reported offset is exactly the end of the DATA frame carrying END_STREAM.
        let offset = try #require(pair.endOffsets()[id])
        let endFrame = try #require(RawFrame.parse(pair.serverOutput).first { $0.stream == id && $0.flags & 1 != 0 })
        #expect(endFrame.type == 0)
        #expect(offset == UInt64(endFrame.end))
        #expect(pair.server.outputOffset == UInt64(pair.serverOutput.count))
        #expect(pair.server.openStreams.isEmpty)
    }

    @Test func uploadIsFlowControlledByConsumption() throws {
        let window = 16_384
        let pair = H2Pair(limits: HTTP2Limits(streamWindow: window, connectionWindow: 1_048_576))
        pair.pump()  // the client learns our SETTINGS first
        let body = (0..<65_536).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let id = pair.client.request("POST", path: "/upload", headers: [("content-length", "65536")], body: body)
        pair.pump()
        #expect(pair.requests().first?.endStream == false)
        var received: [UInt8] = []
        func take() -> Bool {
            var ended = false
            for case .data(let s, let bytes, let end) in pair.events where s == id {
                received += bytes
                ended = ended || end
            }
            pair.events.removeAll()
            return ended
        }
        #expect(!take())
        // Without consumption the client may send exactly one window, however often we pump.
        pair.pump()
        pair.pump()
        #expect(received.count == window)
        #expect(pair.client.sentBodyBytes[id] == window)

        var ended = false
        var rounds = 0
        while !ended && rounds < 100 {
            let before = received.count
            pair.server.consume(stream: id, bytes: 4_096)  // the application reads a little at a time
            pair.pump()
            ended = take()
            // Credit given back is all the client may send beyond what it had: never more.
            #expect(received.count <= before + 4_096 + (window - 4_096))
            #expect(pair.client.sentBodyBytes[id, default: 0] <= (rounds + 1) * 4_096 + window)
            rounds += 1
        }
        #expect(ended)
        #expect(received == body)
        #expect(rounds >= (65_536 - window) / 4_096)
    }

    @Test func streamsBeyondTheConcurrencyLimitAreRefused() throws {
        let client = H2TestClient(peerMaxConcurrentStreams: 1_000)
        let pair = H2Pair(limits: HTTP2Limits(maxConcurrentStreams: 256), client: client)
        // 300 requests sent before the client has seen our SETTINGS.
        let ids = (0..<300).map { _ in client.request("GET", path: "/wait") }
        pair.feed(client.output())
        pair.flushServer()
        pair.pump()
        let accepted = Set(pair.requests().map(\.stream))
        #expect(accepted.count == 256)
        #expect(accepted == Set(ids.prefix(256)))
        let refused = ids.filter { client.responses[$0]?.closedCode == NGHTTP2_REFUSED_STREAM.rawValue }
        #expect(refused == Array(ids.suffix(44)))
        #expect(pair.failure == nil)
        #expect(pair.server.openStreams.count == 256)
    }

    @Test func refusedStreamsCountAsResets() throws {
        let client = H2TestClient(peerMaxConcurrentStreams: 1_000)
        let pair = H2Pair(limits: HTTP2Limits(maxConcurrentStreams: 10, maxResetsPerWindow: 20), client: client)
        (0..<40).forEach { _ in client.request("GET", path: "/x") }  // 30 refused, over 20
        pair.pump()
        #expect(pair.failure == .rapidReset)
        #expect(client.goAway?.code == NGHTTP2_ENHANCE_YOUR_CALM.rawValue)
    }

    @Test func earlyAnswerStopsTheUploadAndGivesBackItsCredit() throws {
        // One connection window's worth: if the unread body kept its credit, the second upload would stall.
        let pair = H2Pair(limits: HTTP2Limits(streamWindow: 65_535, connectionWindow: 65_535))
        pair.pump()
        let first = pair.client.request("POST", path: "/a", body: [UInt8](repeating: 1, count: 200_000))
        pair.pump()
        #expect(pair.client.sentBodyBytes[first] == 65_535)
        try pair.server.respond(stream: first, status: 413, fields: HTTPFields(), body: .whole(Array("too big".utf8)))
        pair.pump()
        #expect(pair.client.responses[first]?.status == 413)
        #expect(pair.client.responses[first]?.closedCode == NGHTTP2_NO_ERROR.rawValue)  // RST_STREAM NO_ERROR
        #expect(pair.closes()[first] == .completed)
        #expect((pair.client.sentBodyBytes[first] ?? 0) < 200_000)

        pair.events.removeAll()
        let second = pair.client.request("POST", path: "/b", body: [UInt8](repeating: 2, count: 30_000))
        pair.pump()
        var got = 0
        var ended = false
        for case .data(second, let bytes, let end) in pair.events { got += bytes.count; ended = ended || end }
        #expect(got == 30_000)
        #expect(ended)
    }

    @Test func outputIsBoundedPerCall() throws {
        let pair = H2Pair(limits: HTTP2Limits(maxOutputPerCall: 20_000))
        let id = pair.client.request("GET", path: "/big")
        pair.pump()
        try pair.server.respond(stream: id, status: 200, fields: HTTPFields(), body: .whole([UInt8](repeating: 3, count: 60_000)))
        var sizes: [Int] = []
        while true {
            let out = pair.server.takeOutput(now: pair.now)
            if out.bytes.isEmpty { break }
            sizes.append(out.bytes.count)
            pair.client.input(out.bytes)
        }
        #expect(sizes.count >= 2)  // 60 KB in calls of at most 20 KB plus one frame
        #expect(sizes.allSatisfy { $0 <= 20_000 + 16_384 + 9 })
        pair.pump()
        #expect(pair.client.responses[id]?.body.count == 60_000)
    }

    @Test func deferredBodyIsSentWhenResumed() throws {
        let pair = H2Pair()
        let id = pair.client.request("GET", path: "/poll")
        pair.pump()
        try pair.server.respond(stream: id, status: 200, fields: ["content-type": "application/json"], body: .streaming)
        pair.pump()
        #expect(pair.client.responses[id]?.status == 200)
        #expect(pair.client.responses[id]?.ended == false)
        #expect(pair.endOffsets()[id] == nil)
        #expect(!pair.server.wantsWrite)  // deferred: nothing to serialise while the poll waits
        let outputBefore = pair.serverOutput.count

        try pair.server.appendBody(stream: id, Array("[1,".utf8), endStream: false)
        pair.pump()
        #expect(String(decoding: pair.client.responses[id]?.body ?? [], as: UTF8.self) == "[1,")
        #expect(pair.endOffsets()[id] == nil)
        try pair.server.appendBody(stream: id, Array("2]".utf8), endStream: true)
        pair.pump()
        #expect(String(decoding: pair.client.responses[id]?.body ?? [], as: UTF8.self) == "[1,2]")
        #expect(pair.client.responses[id]?.ended == true)
        let offset = try #require(pair.endOffsets()[id])
        #expect(offset > UInt64(outputBefore))
        #expect(offset == UInt64(RawFrame.parse(pair.serverOutput).first { $0.stream == id && $0.flags & 1 != 0 }?.end ?? -1))
        #expect(pair.closes()[id] == .completed)
        #expect(throws: HTTP2SubmitError.unknownStream) { try pair.server.appendBody(stream: id, [1], endStream: true) }
    }

    @Test func appendedBodyIsBounded() throws {
        let pair = H2Pair(limits: HTTP2Limits(maxBufferedBodyBytesPerStream: 1_000))
        let id = pair.client.request("GET", path: "/poll")
        pair.pump()
        try pair.server.respond(stream: id, status: 200, fields: HTTPFields(), body: .streaming)
        try pair.server.appendBody(stream: id, [UInt8](repeating: 1, count: 1_000), endStream: false)
        #expect(throws: HTTP2SubmitError.bufferFull) { try pair.server.appendBody(stream: id, [1], endStream: false) }
        pair.pump()
        #expect(pair.server.pendingBodyBytes(stream: id) == 0)
        try pair.server.appendBody(stream: id, [UInt8](repeating: 2, count: 1_000), endStream: true)
        pair.pump()
        #expect(pair.client.responses[id]?.body.count == 2_000)
    }

    @Test func peerResetMidResponseIsReportedAsClosedWithError() throws {
        let pair = H2Pair()
        let id = pair.client.request("GET", path: "/poll")
        let other = pair.client.request("GET", path: "/other")
        pair.pump()
        try pair.server.respond(stream: id, status: 200, fields: HTTPFields(), body: .streaming)
        try pair.server.respond(stream: other, status: 200, fields: HTTPFields(), body: .streaming)
        pair.pump()
        pair.client.reset(id, code: NGHTTP2_CANCEL.rawValue)
        pair.pump()
        #expect(pair.closes()[id] == .resetByPeer(.cancel))
        #expect(pair.closes()[other] == nil)
        #expect(pair.endOffsets()[id] == nil)
        #expect(pair.server.openStreams == [other])
        #expect(throws: HTTP2SubmitError.unknownStream) { try pair.server.appendBody(stream: id, [1], endStream: true) }
        // Our own reset is told apart from the peer's.
        pair.server.resetStream(other, code: .internalError)
        pair.pump()
        #expect(pair.closes()[other] == .resetByUs(.internalError))
        #expect(pair.client.responses[other]?.closedCode == NGHTTP2_INTERNAL_ERROR.rawValue)
    }

    @Test(arguments: [false, true])
    func rapidResetIsCutOffPastTheLimit(pastLimit: Bool) throws {
        let limit = 100
        let pair = H2Pair(limits: HTTP2Limits(maxResetsPerWindow: limit))
        let total = pastLimit ? 300 : limit
        var sent = 0
        while sent < total && pair.client.goAway == nil {
            let ids = (0..<50).map { _ in pair.client.request("GET", path: "/x") }
            pair.pump()
            for id in ids { pair.client.reset(id) }
            pair.pump()
            sent += ids.count
            for case .request(let s, _, _) in pair.events { _ = s }
        }
        if pastLimit {
            #expect(pair.failure == .rapidReset)
            #expect(pair.client.goAway?.code == NGHTTP2_ENHANCE_YOUR_CALM.rawValue)
            #expect(pair.goAwaysSent() == [.enhanceYourCalm])
            #expect(!pair.server.wantsRead)
            #expect(pair.server.isFinished)
        } else {
            #expect(pair.failure == nil)
            #expect(pair.client.goAway == nil)
            #expect(pair.server.wantsRead)
        }
    }

    @Test func resetsOutsideTheWindowAreForgotten() throws {
        let start = ContinuousClock.now
        let pair = H2Pair(limits: HTTP2Limits(rateWindow: .seconds(10), maxResetsPerWindow: 60), now: start)
        for round in 0..<6 {
            pair.now = start + .seconds(5 * round)  // 50 resets every 5 s: at most 100 in any 10 s... over 60
            let ids = (0..<25).map { _ in pair.client.request("GET", path: "/x") }
            pair.pump()
            ids.forEach { pair.client.reset($0) }
            pair.pump()
        }
        #expect(pair.failure == nil)  // 25 per 5 s is 50 per window, under 60
        pair.now = pair.now + .seconds(1)
        let burst = (0..<40).map { _ in pair.client.request("GET", path: "/x") }
        pair.pump()
        burst.forEach { pair.client.reset($0) }
        pair.pump()
        #expect(pair.failure == .rapidReset)
    }

    @Test func continuationFloodIsCutOffWithBoundedMemory() throws {
        let limits = HTTP2Limits(maxHeaderBlockFrames: 6)
        let server = HTTP2ServerSession(limits: limits)
        var input = RawFrame.clientStart
        input += RawFrame.frame(type: 1, flags: 0x1, stream: 1, payload: RawFrame.requestBlock())  // END_STREAM, no END_HEADERS
        let oneField = RawFrame.literal("x-pad", String(repeating: "a", count: 100))
        for _ in 0..<10_000 { input += RawFrame.frame(type: 9, flags: 0, stream: 1, payload: oneField) }
        var events: [HTTP2Event] = []
        var failure: HTTP2Failure?
        var fed = 0
        // Fed in socket-sized reads; the session must stop reading long before the end.
        while fed < input.count, failure == nil {
            let n = min(16_384, input.count - fed)
            let result = input[fed..<(fed + n)].withUnsafeBytes { server.receive($0) }
            events += result.events
            failure = result.failure
            fed += n
            #expect(server.debugBufferedHeaderBytes <= limits.maxHeaderListSize)
        }
        #expect(failure == .headerBlockFlood)
        #expect(fed <= 32_768)  // cut off within the first reads of a 1 MB flood
        #expect(events.isEmpty)  // the request never opened
        let output = server.takeOutput().bytes
        #expect(RawFrame.goAwayCode(in: output) == NGHTTP2_ENHANCE_YOUR_CALM.rawValue)
        #expect(server.isFinished)
    }

    @Test func headerBlockByteBoundHolds() throws {
        // Few frames but many bytes: only the byte bound can trip.
        let server = HTTP2ServerSession(limits: HTTP2Limits(maxHeaderBlockBytes: 3_000))
        var input = RawFrame.clientStart
        input += RawFrame.frame(type: 1, flags: 0x1, stream: 1, payload: RawFrame.requestBlock())
        let field = RawFrame.literal("x-pad", String(repeating: "a", count: 120))
        for _ in 0..<4 { input += RawFrame.frame(type: 9, flags: 0, stream: 1, payload: Array((0..<8).map { _ in field }.joined())) }
        let result = input.withUnsafeBytes { server.receive($0) }
        #expect(result.failure == .headerBlockFlood)
        #expect(RawFrame.goAwayCode(in: server.takeOutput().bytes) == NGHTTP2_ENHANCE_YOUR_CALM.rawValue)
        // The same block under the bound opens the request.
        let calm = HTTP2ServerSession(limits: HTTP2Limits(maxHeaderBlockBytes: 8_000))
        var ok = RawFrame.clientStart + RawFrame.frame(type: 1, flags: 0x1, stream: 1, payload: RawFrame.requestBlock())
        for i in 0..<4 { ok += RawFrame.frame(type: 9, flags: i == 3 ? 0x4 : 0, stream: 1, payload: Array((0..<8).map { _ in field }.joined())) }
        let calmResult = ok.withUnsafeBytes { calm.receive($0) }
        #expect(calmResult.failure == nil)
        #expect(calmResult.events.contains { if case .request(1, _, true) = $0 { true } else { false } })
    }

    @Test func oversizedHeaderListIsRejectedWith431() throws {
        let pair = H2Pair(limits: HTTP2Limits(maxHeaderListSize: 4_096))
        let big = pair.client.request("GET", path: "/big", headers: (0..<10).map { ("x-h\($0)", String(repeating: "v", count: 1_000)) })
        pair.pump()
        let rejected = pair.events.compactMap { if case .requestRejected(let s, let status, _) = $0 { (s, status) } else { nil } }
        #expect(rejected.count == 1)
        #expect(rejected.first?.0 == big)
        #expect(rejected.first?.1 == 431)
        #expect(pair.requests().isEmpty)
        #expect(pair.server.debugBufferedHeaderBytes == 0)
        try pair.server.respond(stream: big, status: 431, fields: ["content-type": "application/problem+json"], body: .whole(Array("{}".utf8)))
        pair.pump()
        #expect(pair.client.responses[big]?.status == 431)
        // The connection stays usable.
        let small = pair.client.request("GET", path: "/small", headers: [("x-h", String(repeating: "v", count: 1_000))])
        pair.pump()
        #expect(pair.requests().map(\.stream) == [small])
    }

    @Test func tooManyFieldsIsRejectedWith431() throws {
        let pair = H2Pair(limits: HTTP2Limits(maxHeaderCount: 20))
        let id = pair.client.request("GET", path: "/", headers: (0..<30).map { ("x-\($0)", "v") })
        pair.pump()
        #expect(pair.events.contains { if case .requestRejected(id, 431, _) = $0 { true } else { false } })
    }

    @Test(arguments: [
        [("connection", "keep-alive")], [("transfer-encoding", "chunked")], [("upgrade", "h2c")], [("te", "gzip")],
        [("keep-alive", "5")], [("host", "other.test")],
    ])
    func malformedRequestsAreResetWithProtocolError(_ extra: [(String, String)]) throws {
        let pair = H2Pair()
        let bad = pair.client.request("GET", path: "/", headers: extra)
        let good = pair.client.request("GET", path: "/", headers: [("te", "trailers"), ("host", "example.test")])
        pair.pump()
        #expect(pair.requests().map(\.stream) == [good])
        #expect(pair.client.responses[bad]?.closedCode == NGHTTP2_PROTOCOL_ERROR.rawValue)
        #expect(pair.failure == nil)
    }

    @Test(arguments: [
        [(":method", "GET"), (":path", "/")],  // no :scheme
        [(":method", "GET"), (":scheme", "http")],  // no :path
        [(":scheme", "http"), (":path", "/")],  // no :method
        [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":path", "/again"), (":authority", "a")],
        [(":method", "GET"), (":scheme", "http"), (":path", "nope"), (":authority", "a")],
        [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "bad host")],
        [(":method", "GET"), (":scheme", "http"), (":path", "/")],  // neither :authority nor host
        [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":status", "200"), (":authority", "a")],
        [(":method", "GET"), (":scheme", "http"), ("x", "y"), (":path", "/"), (":authority", "a")],
        [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "a"), ("x y", "y")],
    ])
    func invalidPseudoHeadersAreResetWithProtocolError(_ fields: [(String, String)]) throws {
        let pair = H2Pair()
        let id = pair.client.submit(fields)
        pair.pump()
        #expect(pair.requests().isEmpty)
        #expect(pair.client.responses[id]?.closedCode == NGHTTP2_PROTOCOL_ERROR.rawValue)
        #expect(pair.closes().isEmpty)  // never opened, so never reported
    }

    @Test func gracefulGoAwayFinishesStreamsInFlight() throws {
        let pair = H2Pair()
        let a = pair.client.request("GET", path: "/a")
        let b = pair.client.request("GET", path: "/b")
        pair.pump()
        pair.server.goAway(graceful: true)
        pair.pump()
        #expect(pair.client.goAway?.code == NGHTTP2_NO_ERROR.rawValue)
        #expect(pair.client.goAway?.lastStreamID == b)
        #expect(!pair.server.isFinished)
        try pair.server.respond(stream: a, status: 200, fields: HTTPFields(), body: .whole([1]))
        pair.pump()
        #expect(!pair.server.isFinished)
        try pair.server.respond(stream: b, status: 204, fields: HTTPFields(), body: .none)
        pair.pump()
        #expect(pair.client.responses[a]?.status == 200)
        #expect(pair.client.responses[b]?.status == 204)
        #expect(pair.server.isFinished)
        #expect(pair.closes()[a] == .completed && pair.closes()[b] == .completed)
    }

    @Test func upgradeFromHTTP1AnswersStreamOne() throws {
        // The client's HTTP2-Settings, as curl --http2 sends it.
        var entries = [peerdist_settings_entry(Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), 100),
                       peerdist_settings_entry(Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), 33_554_432)]
        var payload = [UInt8](repeating: 0, count: 64)
        let n = nghttp2_pack_settings_payload(&payload, payload.count, &entries, entries.count)
        try #require(n == 12)
        payload = Array(payload.prefix(n))
        let header = base64url(payload)
        let fields: HTTPFields = ["Connection": "Upgrade, HTTP2-Settings", "Upgrade": "h2c", "HTTP2-Settings": header]
        let decoded = try #require(HTTP2Upgrade.settingsPayload(from: fields))
        #expect(decoded == payload)

        let now = ContinuousClock.now
        let server = try #require(HTTP2ServerSession(upgradeWithSettings: decoded, headRequest: false, now: now))
        let client = H2TestClient(upgradeSettings: payload)
        let pair = H2Pair(server: server, client: client, now: now)
        #expect(server.openStreams == [1])
        try server.respond(stream: 1, status: 200, fields: ["content-type": "text/plain"], body: .whole(Array("upgraded".utf8)))
        pair.pump()
        #expect(client.responses[1]?.status == 200)
        #expect(String(decoding: client.responses[1]?.body ?? [], as: UTF8.self) == "upgraded")
        #expect(pair.closes()[1] == .completed)
        // The connection goes on as HTTP/2.
        let next = client.request("GET", path: "/next")
        pair.pump()
        #expect(next == 3)
        #expect(pair.requests().map(\.stream) == [3])

        #expect(HTTP2Upgrade.settingsPayload(from: ["Connection": "Upgrade", "Upgrade": "h2c", "HTTP2-Settings": header]) == nil)
        #expect(HTTP2Upgrade.settingsPayload(from: ["Connection": "Upgrade, HTTP2-Settings", "Upgrade": "h2c", "HTTP2-Settings": "a*b"]) == nil)
        #expect(HTTP2Upgrade.settingsPayload(from: ["Connection": "Upgrade, HTTP2-Settings", "Upgrade": "websocket", "HTTP2-Settings": header]) == nil)
        #expect(HTTP2Upgrade.settingsPayload(from: ["Connection": "Upgrade, HTTP2-Settings", "Upgrade": "h2c", "HTTP2-Settings": "AAMA"]) == nil)  // 3 bytes
    }

    @Test func prefaceDetection() {
        func check(_ s: String) -> Bool? { Array(s.utf8).withUnsafeBytes { HTTP2Upgrade.looksLikePreface($0) } }
        #expect(check("") == nil)
        #expect(check("PRI * HT") == nil)
        #expect(check("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") == true)
        #expect(check("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\u{4}") == true)
        #expect(check("GET / HTTP/1.1\r\n") == false)
        #expect(check("PRX") == false)
        #expect(check("PRI * HTTP/1.1\r\n\r\nSM\r\n\r\n") == false)
    }

    @Test func badPrefaceFails() {
        let server = HTTP2ServerSession()
        let result = Array("GET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8).withUnsafeBytes { server.receive($0) }
        #expect(result.failure != nil)
        _ = server.takeOutput()
        #expect(server.isFinished)
    }

    @Test func pingFloodGetsEnhanceYourCalm() {
        let server = HTTP2ServerSession(limits: HTTP2Limits(maxControlFramesPerWindow: 50))
        var input = RawFrame.clientStart
        for i in 0..<200 { input += RawFrame.frame(type: 6, flags: 0, stream: 0, payload: [UInt8](repeating: UInt8(i & 0xFF), count: 8)) }
        let result = input.withUnsafeBytes { server.receive($0) }
        #expect(result.failure == .controlFrameFlood)
        let out = server.takeOutput().bytes
        #expect(RawFrame.goAwayCode(in: out) == NGHTTP2_ENHANCE_YOUR_CALM.rawValue)
        let acks = RawFrame.parse(out).filter { $0.type == 6 }.count
        #expect(acks <= 50)
        // Under the limit nothing happens.
        let calm = HTTP2ServerSession(limits: HTTP2Limits(maxControlFramesPerWindow: 50))
        var few = RawFrame.clientStart
        for _ in 0..<40 { few += RawFrame.frame(type: 6, flags: 0, stream: 0, payload: [UInt8](repeating: 0, count: 8)) }
        #expect(few.withUnsafeBytes { calm.receive($0) }.failure == nil)
    }

    @Test func emptyDataFloodGetsEnhanceYourCalm() {
        let server = HTTP2ServerSession(limits: HTTP2Limits(maxEmptyFramesPerWindow: 100))
        var input = RawFrame.clientStart
        input += RawFrame.frame(type: 1, flags: 0x4, stream: 1, payload: RawFrame.requestBlock())  // END_HEADERS, body follows
        for _ in 0..<500 { input += RawFrame.frame(type: 0, flags: 0, stream: 1, payload: []) }
        let result = input.withUnsafeBytes { server.receive($0) }
        #expect(result.failure == .emptyFrameFlood)
        #expect(RawFrame.goAwayCode(in: server.takeOutput().bytes) == NGHTTP2_ENHANCE_YOUR_CALM.rawValue)
    }

    @Test func tooManySettingsEntriesGetsEnhanceYourCalm() {
        let server = HTTP2ServerSession(limits: HTTP2Limits(maxSettingsEntries: 8))
        var payload: [UInt8] = []
        for _ in 0..<20 { payload += [0x00, 0x03, 0x00, 0x00, 0x00, 0x64] }
        let input = HTTP2Upgrade.preface + RawFrame.frame(type: 4, flags: 0, stream: 0, payload: payload)
        #expect(input.withUnsafeBytes { server.receive($0) }.failure == .controlFrameFlood)
    }

    @Test func settingsAckTimeoutAndIdleDeadline() throws {
        let start = ContinuousClock.now
        let limits = HTTP2Limits(settingsAckTimeout: .seconds(5), idleTimeout: .seconds(30))
        // A peer that never acknowledges our SETTINGS.
        let silent = HTTP2ServerSession(limits: limits, now: start)
        _ = RawFrame.clientStart.withUnsafeBytes { silent.receive($0, now: start) }
        _ = silent.takeOutput(now: start)
        #expect(silent.nextDeadline() == start + .seconds(5))
        #expect(silent.timerFired(now: start + .seconds(4)) == nil)
        #expect(silent.timerFired(now: start + .seconds(5)) == .settingsTimeout)
        #expect(RawFrame.goAwayCode(in: silent.takeOutput(now: start + .seconds(5)).bytes) == NGHTTP2_SETTINGS_TIMEOUT.rawValue)

        // A well-behaved client: once it acknowledges, only the idle deadline is left.
        let pair = H2Pair(limits: limits, now: start)
        pair.pump()
        #expect(pair.server.nextDeadline() == start + .seconds(30))
        pair.now = start + .seconds(10)
        let id = pair.client.request("GET", path: "/")
        pair.pump()
        #expect(pair.server.nextDeadline() == nil)  // a stream is open: not idle
        try pair.server.respond(stream: id, status: 200, fields: HTTPFields(), body: .none)
        pair.now = start + .seconds(12)
        pair.pump()
        #expect(pair.server.nextDeadline() == start + .seconds(42))
        #expect(pair.server.timerFired(now: start + .seconds(41)) == nil)
        #expect(!pair.server.isFinished)
        pair.now = start + .seconds(42)
        #expect(pair.server.timerFired(now: pair.now) == nil)
        pair.pump()
        #expect(pair.client.goAway?.code == NGHTTP2_NO_ERROR.rawValue)
        #expect(pair.server.isFinished)
    }

    @Test func flowControlStallResetsTheStream() throws {
        let start = ContinuousClock.now
        // The client's stream window is 100 bytes and it never opens it again.
        var entry = peerdist_settings_entry(Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), 100)
        let client = H2TestClient(sendSettings: false, manualWindow: true)
        nghttp2_submit_settings(client.session, 0, &entry, 1)
        let pair = H2Pair(limits: HTTP2Limits(flowControlStallTimeout: .seconds(30)), client: client, now: start)
        let id = client.request("GET", path: "/big")
        pair.pump()
        try pair.server.respond(stream: id, status: 200, fields: HTTPFields(), body: .whole([UInt8](repeating: 7, count: 1_000)))
        pair.pump()
        #expect(client.responses[id]?.body.count == 100)
        #expect(pair.server.nextDeadline() == start + .seconds(30))
        pair.now = start + .seconds(30)
        #expect(pair.server.timerFired(now: pair.now) == nil)
        pair.pump()
        #expect(pair.closes()[id] == .resetByUs(.cancel))
        #expect(client.responses[id]?.closedCode == NGHTTP2_CANCEL.rawValue)
    }

    @Test func connectionClosedReportsOpenStreams() throws {
        let pair = H2Pair()
        let a = pair.client.request("GET", path: "/a")
        let b = pair.client.request("GET", path: "/b")
        pair.pump()
        try pair.server.respond(stream: a, status: 200, fields: HTTPFields(), body: .streaming)
        let events = pair.server.connectionClosed()
        let closed = events.compactMap { if case .streamClosed(let s, .connectionClosed) = $0 { s } else { nil } }
        #expect(closed == [a, b])
        #expect(!pair.server.wantsRead)
        #expect(throws: HTTP2SubmitError.sessionClosed) { try pair.server.appendBody(stream: a, [1], endStream: true) }
    }
}

private func base64url(_ bytes: [UInt8]) -> String {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    var out: [UInt8] = []
    var i = 0
    while i < bytes.count {
        let b0 = UInt32(bytes[i]), b1 = i + 1 < bytes.count ? UInt32(bytes[i + 1]) : 0, b2 = i + 2 < bytes.count ? UInt32(bytes[i + 2]) : 0
        let v = b0 << 16 | b1 << 8 | b2
        out.append(alphabet[Int(v >> 18 & 63)])
        out.append(alphabet[Int(v >> 12 & 63)])
        if i + 1 < bytes.count { out.append(alphabet[Int(v >> 6 & 63)]) }
        if i + 2 < bytes.count { out.append(alphabet[Int(v & 63)]) }
        i += 3
    }
    return String(decoding: out, as: UTF8.self)
}
