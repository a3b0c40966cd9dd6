import HTTPWire

/// libFuzzer entry point for the HTTP/2 server session: the client preface, then the fuzzer's
/// bytes in a few slices. Every stream that opens is answered (whole, streamed, or reset), request
/// bodies are consumed, and the output is drained. It must never trap.
/// (`package`: no fuzzing target exists on main yet; move it there as `public` when one does.)
package enum HTTP2FrameFuzzer {
    package static func run(_ bytes: UnsafeRawBufferPointer) {
        let start = ContinuousClock.now
        let session = HTTP2ServerSession(limits: HTTP2Limits(idleTimeout: .seconds(1), flowControlStallTimeout: .seconds(1)), now: start)
        var now = start
        func handle(_ events: [HTTP2Event]) {
            for event in events {
                switch event {
                case .request(let stream, let head, _):
                    switch stream % 3 {
                    case 0: try? session.respond(stream: stream, status: 200, fields: ["content-type": "text/plain"], body: .whole(Array(head.path.utf8)))
                    case 1:
                        try? session.respond(stream: stream, status: 200, fields: HTTPFields(), body: .streaming)
                        try? session.appendBody(stream: stream, [1, 2, 3], endStream: stream % 2 == 0)
                    default: session.resetStream(stream, code: .cancel)
                    }
                case .requestRejected(let stream, let status, _):
                    try? session.respond(stream: stream, status: status, fields: HTTPFields(), body: .none)
                case .data(let stream, let chunk, _):
                    session.consume(stream: stream, bytes: chunk.count)
                default:
                    break
                }
            }
        }
        func drain() {
            for _ in 0..<64 {
                let output = session.takeOutput(now: now)
                handle(output.events)
                if output.bytes.isEmpty { break }
            }
        }
        HTTP2Upgrade.preface.withUnsafeBytes { handle(session.receive($0, now: now).events) }
        drain()
        var offset = 0
        var slice = 1
        while offset < bytes.count {
            let n = min(slice, bytes.count - offset)
            let result = session.receive(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + n)]), now: now)
            handle(result.events)
            drain()
            offset += n
            slice = slice * 3 + 1
            now += .milliseconds(300)
            if session.timerFired(now: now) != nil || result.failure != nil { break }
        }
        drain()
        _ = session.nextDeadline()
        _ = session.connectionClosed()
    }
}
