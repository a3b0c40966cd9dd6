import HTTP2Wire
import HTTPWire

/// FuzzHTTP2Frames: the HTTP/2 server session (HTTP2Wire over libnghttp2) fed the client preface,
/// then the input in slices of growing size (1, 4, 13, ... bytes), with the clock moving 300 ms per
/// slice so that the rate windows and timers are reached. Every stream that opens is answered:
/// whole, streamed (and sometimes ended), or reset, by its id; request bodies are consumed; the
/// output is drained after every slice.
///
/// Checks: the session's output offset is the count of bytes it returned; END_STREAM offsets never
/// pass it and never go back; no stream is reported after its close, nor closed twice; open
/// streams never exceed the concurrency limit; no request head kept past the header-list limit.
public enum HTTP2FrameFuzzer {
    public static func run(_ bytes: UnsafeRawBufferPointer) {
        let start = ContinuousClock.now
        let limits = HTTP2Limits(maxConcurrentStreams: 16, idleTimeout: .seconds(1), flowControlStallTimeout: .seconds(1))
        let session = HTTP2ServerSession(limits: limits, now: start)
        var now = start
        var written: UInt64 = 0
        var lastEnd: UInt64 = 0
        var open = Set<Int32>()
        var closed = Set<Int32>()

        func handle(_ events: [HTTP2Event]) {
            for event in events {
                switch event {
                case .request(let stream, let head, _):
                    fuzzCheck(!closed.contains(stream) && !open.contains(stream), "stream \(stream) opened twice")
                    open.insert(stream)
                    switch stream % 3 {
                    case 0:
                        try? session.respond(stream: stream, status: 200, fields: ["content-type": "text/plain"], body: .whole(Array(head.path.utf8)))
                    case 1:
                        try? session.respond(stream: stream, status: 200, fields: HTTPFields(), body: .streaming)
                        try? session.appendBody(stream: stream, [1, 2, 3], endStream: stream % 2 == 1)
                    default:
                        session.resetStream(stream, code: .cancel)
                    }
                case .requestRejected(let stream, let status, _):
                    fuzzCheck(!closed.contains(stream) && !open.contains(stream), "stream \(stream) opened twice")
                    open.insert(stream)
                    try? session.respond(stream: stream, status: status, fields: HTTPFields(), body: .none)
                case .data(let stream, let chunk, _):
                    fuzzCheck(open.contains(stream), "data on stream \(stream), which is not open")
                    session.consume(stream: stream, bytes: chunk.count)
                case .streamClosed(let stream, _):
                    fuzzCheck(open.remove(stream) != nil, "stream \(stream) closed but not open")
                    closed.insert(stream)
                case .responseEndWritten(let stream, let offset):
                    fuzzCheck(offset <= written && offset >= lastEnd, "END_STREAM offset \(offset) of stream \(stream) out of order (written \(written))")
                    lastEnd = offset
                default:
                    break
                }
            }
            fuzzCheck(open.count <= limits.maxConcurrentStreams, "\(open.count) streams open past the limit")
            fuzzCheck(session.debugBufferedHeaderBytes <= limits.maxHeaderListSize, "request head kept past the header-list limit")
        }
        func drain() {
            for _ in 0..<64 {
                let output = session.takeOutput(now: now)
                written += UInt64(output.bytes.count)
                fuzzCheck(session.outputOffset == written, "output offset \(session.outputOffset) is not the \(written) bytes returned")
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
            drain()
        }
        drain()
        _ = session.nextDeadline()
        handle(session.connectionClosed())
        fuzzCheck(open.isEmpty, "streams left open after the connection closed")
    }
}
