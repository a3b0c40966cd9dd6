import HTTPServer

/// FuzzHTTP1Connection: the real HTTP/1.1 connection handler, core and router, driven by bytes
/// over an in-process connection (no socket), with timers fired and EOF given when the input says.
///
/// Input: a script of steps. Each step is one control byte `c`: `c % 8` in 0...4 feeds the next
/// `c / 8 + 1` bytes (up to 32), 5 fires the armed timer, 6 lets handlers finish, 7 ends the input
/// (EOF). Whatever is left after the script's end is fed at once.
///
/// Checks: nothing traps; every answer the server writes begins with a status line of
/// HTTP/1.1 and a three-digit status; nothing is written after the connection closed.
public enum HTTP1ConnectionFuzzer {
    static let router = Router([
        .sync(.get, "/hello") { _ in .json(200, #"{"hello":"world"}"#) },
        .sync(.get, "/echo/{name}") { req in
            .json(200, "{\"name\":\(req.parameters["name"]?.utf8.count ?? -1),\"q\":\(req.queryValue("q")?.utf8.count ?? -1)}")
        },
        .sync(.post, "/buffered") { req in .json(200, "{\"length\":\(req.body.bytes.count)}") },
        .sync(.get, "/large") { _ in .json(200, Array(repeating: 0x61, count: 3_000)) },
        .async(.post, "/streamed", body: .streamed) { req in
            guard case .stream(let stream) = req.body else { throw HTTPError.http(400, "no stream") }
            var total = 0
            while let chunk = try await stream.next() { total += chunk.count }
            return .json(200, "{\"length\":\(total)}")
        },
        .async(.post, "/refuse", body: .streamed) { _ in throw HTTPError.http(413, "refused from the head") },
        .async(.get, "/wait", interruptibleOnDrain: true) { _ in
            try? await Task.sleep(for: .milliseconds(1))
            return .json(200, "{}")
        },
    ])

    public static func run(_ buffer: UnsafeRawBufferPointer) {
        var configuration = ServerConfiguration()
        configuration.parserLimits = HTTPWireLimits(maxHeadBytes: 2_048, maxHeaderCount: 16, maxTargetLength: 512, maxTrailerBytes: 256)
        configuration.maxBodySize = 4_096
        configuration.maxDrainBytes = 4_096
        configuration.streamingBodyBuffer = 1_024
        configuration.compressionMinimumBytes = 1_024
        let connection = InProcessHTTP1Connection(router: router, configuration: configuration)
        var i = 0
        var writtenAtClose: Int?
        func check() {
            if connection.isClosed {
                let count = connection.output.count
                if let before = writtenAtClose { fuzzCheck(count == before, "bytes written after the connection closed") }
                writtenAtClose = count
            }
        }
        while i < buffer.count {
            let c = buffer[i]
            i += 1
            switch c % 8 {
            case 0...4:
                let n = min(Int(c / 8) + 1, buffer.count - i)
                connection.feed(Array(buffer[i..<(i + n)]))
                i += n
            case 5: connection.fireTimer()
            case 6: connection.settle(timeout: .milliseconds(20))
            default: connection.finishInput()
            }
            check()
        }
        connection.settle(timeout: .milliseconds(20))
        check()
        let output = connection.output
        // Whatever still waits (a body that never came) is released, as a closed socket would.
        connection.close()
        connection.settle(timeout: .milliseconds(50))
        fuzzCheck(output.isEmpty || output.starts(with: "HTTP/1.1 ".utf8), "the output does not begin with a status line")
        var k = 0
        while let r = find(output, "\r\nHTTP/1.1 ", from: k) {
            let status = output[(r + 11)...].prefix(4)
            fuzzCheck(status.count == 4 && status.prefix(3).allSatisfy { $0 >= 0x30 && $0 <= 0x39 } && status.last == 0x20,
                      "a status line without a three-digit status")
            k = r + 1
        }
    }

    private static func find(_ haystack: [UInt8], _ needle: String, from: Int) -> Int? {
        let n = Array(needle.utf8)
        guard haystack.count >= n.count, from <= haystack.count - n.count else { return nil }
        for i in from...(haystack.count - n.count) where haystack[i] == n[0] && haystack[i..<(i + n.count)].elementsEqual(n) {
            return i
        }
        return nil
    }
}
