import HTTPServer
import HTTPWire

/// FuzzRequestHead: the HTTP/1.1 request-head parser and the interpretation of every header the
/// server reads.
///
/// Input: byte 0 chooses the limits (bit 7: small limits, so that the 431/414 paths are reached
/// with short inputs), byte 1 the split pattern (`Splitter`), the rest is what a client sends.
///
/// Checks:
/// - parsing whole and parsing in slices (as a connection sees them) agree: the same head and the
///   same length, or a failure with the same status;
/// - a parsed head, written back out as a request and parsed again, is the same head;
/// - every field value given to `FieldList.parse`: a parsed list, written back out canonically,
///   parses to the same elements; qvalues stay in 0...1000 and survive formatting;
/// - Host syntax, the usable request id, the target split (origin and absolute form), every query
///   value, percent-decoding of every path segment, and response compression for this request.
/// Up to four pipelined heads are parsed when their bodies are framed by length.
public enum RequestHeadFuzzer {
    public static func run(_ buffer: UnsafeRawBufferPointer) {
        guard buffer.count >= 2 else { return }
        let limits = buffer[0] & 0x80 != 0
            ? HTTP1Limits(maxHeadBytes: 512, maxHeaderCount: 8, maxTargetLength: 128, maxTrailerBytes: 64)
            : HTTP1Limits()
        let splitter = Splitter(buffer[1])
        var input = bytes(buffer, droppingFirst: 2)
        for _ in 0..<4 {
            let whole = parseWhole(input, limits: limits)
            let split = parseSplit(input, limits: limits, splitter: splitter)
            compare(whole, split, input, limits: limits)
            guard case .complete(let head, let consumed) = whole else { return }
            checkRoundTrip(head, limits: limits)
            interpret(head)
            var next = consumed
            switch head.framing {
            case .none: break
            case .length(let n): next += Int(clamping: n)
            case .chunked: return
            }
            guard next < input.count else { return }
            input = Array(input[next...])
        }
    }

    enum Outcome {
        case needMore
        case complete(RequestHead, Int)
        case failed(HTTP1ParseError)
    }

    static func parseWhole(_ input: [UInt8], limits: HTTP1Limits) -> Outcome {
        var parser = RequestHeadParser(limits: limits)
        return parse(&parser, input[...])
    }

    /// Feeds growing prefixes, as a connection's input buffer grows, until the head completes or fails.
    static func parseSplit(_ input: [UInt8], limits: HTTP1Limits, splitter: Splitter) -> Outcome {
        var parser = RequestHeadParser(limits: limits)
        var outcome = Outcome.needMore
        for end in splitter.prefixEnds(input.count) {
            outcome = parse(&parser, input[0..<end])
            if case .needMore = outcome { continue }
            return outcome
        }
        return outcome
    }

    private static func parse(_ parser: inout RequestHeadParser, _ bytes: ArraySlice<UInt8>) -> Outcome {
        do throws(HTTP1ParseError) {
            let result = try withBytes(bytes) { buf throws(HTTP1ParseError) in try parser.parse(buf) }
            switch result {
            case .needMore: return .needMore
            case .complete(let head, let consumed):
                fuzzCheck(consumed > 0 && consumed <= bytes.count, "consumed \(consumed) of \(bytes.count)")
                return .complete(head, consumed)
            }
        } catch {
            fuzzCheck((400...599).contains(error.status), "status \(error.status)")
            return .failed(error)
        }
    }

    private static func compare(_ whole: Outcome, _ split: Outcome, _ input: [UInt8], limits: HTTP1Limits) {
        switch (whole, split) {
        case (.complete(let a, let n), .complete(let b, let m)):
            fuzzCheck(n == m && same(a, b), "whole and split parses gave different heads")
        case (.failed(let a), .failed(let b)):
            // A prefix may reach a size limit (414 request line, 431 head) before a syntax error
            // or the other limit that the whole shows: a connection reading in pieces sees it first.
            fuzzCheck(a.status == b.status || b.status == 414 || b.status == 431,
                      "whole failed \(a.status) (\(a.detail)), split failed \(b.status) (\(b.detail))")
        case (.needMore, .needMore):
            break
        case (.needMore, .failed(let e)):
            // A prefix may be refused by a limit that the whole, having more lines, does not yet
            // show; the connection would refuse it once the rest arrives.
            fuzzCheck(e.status == 414 || e.status == 431, "whole needs more, split failed \(e.status) (\(e.detail))")
        default:
            fatalError("fuzz invariant broken: whole parse gave \(describe(whole)), split parse gave \(describe(split))")
        }
    }

    private static func describe(_ o: Outcome) -> String {
        switch o {
        case .needMore: "needMore"
        case .complete(let h, let n): "complete(\(h.method) \(h.target), \(n) bytes)"
        case .failed(let e): "failed(\(e.status): \(e.detail))"
        }
    }

    static func same(_ a: RequestHead, _ b: RequestHead) -> Bool {
        a.method == b.method && a.target == b.target && a.version == b.version && a.fields.fields == b.fields.fields
            && a.framing == b.framing && a.keepAlive == b.keepAlive && a.expectsContinue == b.expectsContinue
            && a.acceptsGzip == b.acceptsGzip && a.acceptEncodingMalformed == b.acceptEncodingMalformed
    }

    /// Writes the head back out and parses it again: it must give the same head.
    private static func checkRoundTrip(_ head: RequestHead, limits: HTTP1Limits) {
        var out = Array("\(head.method.rawValue) \(head.target) \(head.version)\r\n".utf8)
        for field in head.fields {
            out += field.name.utf8
            out += ": ".utf8
            out += field.value.utf8
            out += "\r\n".utf8
        }
        out += "\r\n".utf8
        // The written head may be a little longer than what was sent (a space after each colon).
        let relaxed = HTTP1Limits(maxHeadBytes: max(limits.maxHeadBytes, out.count), maxHeaderCount: limits.maxHeaderCount,
                                  maxTargetLength: limits.maxTargetLength, maxTrailerBytes: limits.maxTrailerBytes)
        switch parseWhole(out, limits: relaxed) {
        case .complete(let again, let consumed):
            fuzzCheck(consumed == out.count, "re-parse consumed \(consumed) of \(out.count)")
            fuzzCheck(same(head, again), "re-parsed head differs from the parsed head")
        case .failed(let e):
            fatalError("fuzz invariant broken: a parsed head written back out fails: \(e.status) \(e.detail)")
        case .needMore:
            fatalError("fuzz invariant broken: a parsed head written back out is incomplete")
        }
    }

    /// Every header the server reads, through the functions that read it.
    static func interpret(_ head: RequestHead) {
        for field in head.fields {
            FieldListChecks.check(field.value)
        }
        for name in ["Accept-Encoding", "Connection", "Expect", "Transfer-Encoding", "Prefer", "Content-Type"] {
            let all = FieldList.parse(head.fields, name)
            let each = head.fields.values(name).map { FieldList.parse($0) }
            if each.contains(where: { $0 == nil }) {
                fuzzCheck(all == nil, "\(name): a malformed value but the list parsed")
            } else {
                fuzzCheck(all == each.flatMap { $0! }, "\(name): list of all values differs from the values' lists")
            }
        }
        if let host = head.fields["Host"] {
            fuzzCheck(HostSyntax.isValid(host), "the parser accepted an invalid Host '\(host)'")
            fuzzCheck(!host.utf8.contains(where: { $0 <= 0x20 || $0 == 0x2F || $0 == 0x3F || $0 == 0x23 || $0 == 0x40 || $0 >= 0x7F }),
                      "a valid Host holds a character no host may hold: '\(host)'")
        }
        if let id = Request.usableRequestID(head.fields) {
            fuzzCheck(id == head.fields["X-Request-Id"] && (1...128).contains(id.utf8.count)
                      && id.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }, "unusable request id accepted")
        }
        // A malformed Accept-Encoding is ignored, never refused: the head parsed, without gzip.
        let accepts = FieldList.acceptsGzip(head.fields)
        fuzzCheck(head.acceptEncodingMalformed == (accepts == nil), "Accept-Encoding malformed but not flagged, or flagged but well formed")
        fuzzCheck(head.acceptsGzip == (accepts ?? false), "acceptsGzip differs from the Accept-Encoding list")
        TargetChecks.check(Request(head: head))
        checkCompression(head)
    }

    /// Response compression negotiated from this head's Accept-Encoding.
    private static func checkCompression(_ head: RequestHead) {
        let body = Array(String(repeating: #"{"code":87,"error":"ERROR_INVALID_PARAMETER"}"#, count: 40).utf8)
        var response = Response.json(400, body)
        ResponseCompression.apply(&response, request: Request(head: head), minimumBytes: 1_024)
        if response.headers["Content-Encoding"] == "gzip" {
            fuzzCheck(head.acceptsGzip, "gzip sent to a client that does not accept it")
            fuzzCheck(Gzip.decompress(response.body, limit: body.count) == body, "compressed response does not inflate to the body")
        } else {
            fuzzCheck(response.body == body, "an uncompressed body was changed")
            fuzzCheck(!head.acceptsGzip, "a client accepting gzip got an uncompressed body")
        }
    }
}

/// Properties of `FieldList` on any value.
enum FieldListChecks {
    static func check(_ value: String) {
        guard let elements = FieldList.parse(value) else { return }
        for element in elements {
            fuzzCheck(!element.item.isEmpty, "an empty item in '\(value)'")
            for (name, v) in element.parameters {
                fuzzCheck(!name.isEmpty, "an empty parameter name in '\(value)'")
                if name == "q", let v, let q = FieldList.qvalue(v) {
                    fuzzCheck((0...1000).contains(q), "qvalue \(q) of '\(v)'")
                    fuzzCheck(FieldList.qvalue(formatQ(q)) == q, "qvalue \(q) does not survive formatting")
                }
            }
        }
        let canonical = write(elements)
        let again = FieldList.parse(canonical)
        fuzzCheck(again == elements, "'\(value)' written as '\(canonical)' parses differently")
    }

    /// A qvalue in thousandths as `0.xyz` or `1`.
    static func formatQ(_ q: Int) -> String {
        if q == 1000 { return "1" }
        let digits = String(q)
        return "0." + String(repeating: "0", count: 3 - digits.count) + digits
    }

    /// Elements written canonically: every value as a quoted-string.
    static func write(_ elements: [FieldListElement]) -> String {
        elements.map { element in
            var s = element.item
            if let v = element.value { s += "=" + quote(v) }
            for (name, v) in element.parameters {
                s += ";" + name
                if let v { s += "=" + quote(v) }
            }
            return s
        }.joined(separator: ", ")
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            if c == "\"" || c == "\\" { out.append("\\") }
            out.unicodeScalars.append(c)
        }
        return out + "\""
    }
}

/// Properties of the target split, query values and percent-decoding.
enum TargetChecks {
    /// Query parameters the routes read.
    static let parameterNames = ["op", "timeoutMs", "since", "state", "pageSize", "pageToken", "maxBytes", "max", "version"]

    static func check(_ request: Request) {
        let target = request.target
        fuzzCheck(!request.path.utf8.contains(0x3F), "the path '\(request.path)' holds a '?'")
        if target.hasPrefix("/") {
            let rebuilt = String(request.path) + (request.query.map { "?" + $0 } ?? "")
            fuzzCheck(rebuilt == target, "path and query '\(rebuilt)' do not make the target '\(target)'")
        } else if target.hasPrefix("http://") || target.hasPrefix("https://") {
            fuzzCheck(request.path.hasPrefix("/"), "absolute-form '\(target)' gave the path '\(request.path)'")
        }
        var names = parameterNames
        if let query = request.query {
            for pair in query.split(separator: "&").prefix(32) {
                let rawName = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
                if let name = PercentDecoding.decode(rawName) { names.append(name) }
            }
        }
        for name in names {
            let value = request.queryValue(name)
            if request.query == nil { fuzzCheck(value == nil, "a value of '\(name)' without a query") }
        }
        for segment in request.path.utf8.split(separator: UInt8(ascii: "/")).prefix(64) {
            checkDecoding(Substring(segment))
        }
    }

    static func checkDecoding(_ raw: Substring) {
        guard let decoded = PercentDecoding.decode(raw) else {
            fuzzCheck(raw.utf8.contains(0x25), "'\(raw)' has no escape but does not decode")
            return
        }
        if !raw.utf8.contains(0x25) { fuzzCheck(decoded == raw, "'\(raw)' has no escape but decodes to '\(decoded)'") }
        let encoded = percentEncodeAll(decoded)
        fuzzCheck(PercentDecoding.decode(Substring(encoded)) == decoded, "'\(decoded)' does not survive percent-encoding")
    }
}
