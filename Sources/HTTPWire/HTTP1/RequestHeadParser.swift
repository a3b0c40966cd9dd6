#if canImport(Glibc)
import Glibc
#endif

/// An incremental HTTP/1.1 request-head parser (RFC 9112 §2–§7), in the style of picohttpparser.
///
/// Feed it the connection's buffered bytes, starting at the first byte of the head, each time more
/// arrive. It remembers how far it has already scanned for the blank line, so a head delivered one
/// byte at a time costs O(n) in all, not O(n²). It never touches sockets.
public struct RequestHeadParser: Sendable {
    /// The outcome of one parse attempt.
    public enum Result: Sendable {
        /// The head is not complete yet.
        case needMore
        /// A complete head; `consumed` bytes (including the blank line) belong to it.
        case complete(RequestHead, consumed: Int)
    }

    private let limits: HTTP1Limits
    /// Bytes already scanned for the end of the head.
    private var scanned = 0

    /// Creates a parser with these limits.
    public init(limits: HTTP1Limits) { self.limits = limits }

    /// Forgets progress; call before parsing the next head of a persistent connection.
    public mutating func reset() {
        scanned = 0
        requestLineEnd = -1
        requestLineChecked = false
    }

    /// Tries to parse a head from the start of `buffer`.
    /// - Parameter buffer: every byte received since the head began.
    /// - Returns: `.needMore` or the complete head with the number of bytes it used.
    /// - Throws: `HTTP1ParseError` when the bytes can never form an acceptable head.
    public mutating func parse(_ buffer: UnsafeRawBufferPointer) throws(HTTP1ParseError) -> Result {
        let count = buffer.count
        // RFC 9112 §2.2: ignore empty lines before the request line.
        var start = 0
        while start + 1 < count, buffer[start] == 0x0D, buffer[start + 1] == 0x0A { start += 2 }
        // Those empty lines count against the head's limit, or a client sending only CRLFs would
        // be buffered without bound.
        guard start < count else {
            if count > limits.maxHeadBytes { throw .headTooLarge }
            return .needMore
        }
        // Only a method token can begin a request: anything else (a TLS ClientHello, binary
        // garbage, a bare LF) is refused at once rather than held until the head timeout.
        if buffer[start] == 0x0A { throw .badRequest("bare LF before the request line") }
        guard HTTPTokens.isTChar(buffer[start]) || buffer[start] == 0x0D else {
            throw .badRequest("not an HTTP/1.1 request")
        }
        // Each LF must follow a CR (bare LF is refused at once, RFC 9112 §2.2); the head ends at
        // the first CRLFCRLF. Only bytes not scanned before are looked at.
        var i = max(start, scanned)
        var end = -1
        while i < count {
            guard let lf = Self.firstLF(buffer, from: i) else { break }
            if lf == start || buffer[lf - 1] != 0x0D { throw .badRequest("bare LF in the request head") }
            if lf - start >= 3, buffer[lf - 2] == 0x0A { end = lf + 1; break }
            if requestLineEnd < 0 { requestLineEnd = lf - 1 }
            i = lf + 1
        }
        // The request line is judged first, so that an over-long target is 414 even when the
        // head is also over its limit.
        if requestLineEnd < 0, end < 0, count > start {
            // A CR at the end may be the line's own terminator, its LF still to come: not part of
            // the line (else a line of exactly the longest length is refused when split there).
            let lineSoFar = count - start - (buffer[count - 1] == 0x0D ? 1 : 0)
            if lineSoFar > limits.maxTargetLength + Self.requestLineSlack { throw .targetTooLong }
        }
        if requestLineEnd >= 0, !requestLineChecked {
            try checkTargetLength(UnsafeRawBufferPointer(rebasing: buffer[start..<requestLineEnd]))
            requestLineChecked = true
        }
        if end < 0 {
            scanned = count
            if count > limits.maxHeadBytes { throw .headTooLarge }
            return .needMore
        }
        if end > limits.maxHeadBytes { throw .headTooLarge }
        let head = try parseHead(UnsafeRawBufferPointer(rebasing: buffer[start..<end - 2]))
        reset()
        return .complete(head, consumed: end)
    }

    /// Room for the method, two spaces and the version around a target of the largest length.
    private static let requestLineSlack = 64
    /// Index of the CR that ends the request line, once seen (-1 before).
    private var requestLineEnd = -1
    private var requestLineChecked = false

    private static func firstLF(_ buffer: UnsafeRawBufferPointer, from: Int) -> Int? {
        guard let base = buffer.baseAddress, from < buffer.count,
              let hit = memchr(base + from, 0x0A, buffer.count - from) else { return nil }
        return UnsafeRawPointer(hit) - base
    }

    /// 414 when a complete request line is longer than a line of the longest target can be, or
    /// its target is longer than the limit: the same answer as for a line still arriving.
    private func checkTargetLength(_ line: UnsafeRawBufferPointer) throws(HTTP1ParseError) {
        if line.count > limits.maxTargetLength + Self.requestLineSlack { throw .targetTooLong }
        guard let firstSpace = line.firstIndex(of: 0x20) else { return }
        let rest = line[(firstSpace + 1)...]
        let targetEnd = rest.firstIndex(of: 0x20) ?? line.count
        if targetEnd - firstSpace - 1 > limits.maxTargetLength { throw .targetTooLong }
    }

    // MARK: - Head

    /// Parses the head without its final CRLF (each line still ends in CRLF).
    private func parseHead(_ head: UnsafeRawBufferPointer) throws(HTTP1ParseError) -> RequestHead {
        var pos = 0
        let lineEnd = try Self.lineEnd(head, from: 0)
        let requestLine = UnsafeRawBufferPointer(rebasing: head[0..<lineEnd])
        let (method, target, version) = try parseRequestLine(requestLine)
        pos = lineEnd + 2
        var fields: [HTTPField] = []
        while pos < head.count {
            let end = try Self.lineEnd(head, from: pos)
            if fields.count == limits.maxHeaderCount { throw .tooManyFields }
            fields.append(try Self.parseField(UnsafeRawBufferPointer(rebasing: head[pos..<end])))
            pos = end + 2
        }
        return try Self.interpret(method: method, target: target, version: version, fields: HTTPFields(fields))
    }

    /// Index of the CR of the CRLF that ends the line starting at `from`.
    private static func lineEnd(_ buf: UnsafeRawBufferPointer, from: Int) throws(HTTP1ParseError) -> Int {
        var i = from
        while i < buf.count {
            switch buf[i] {
            case 0x0D:
                guard i + 1 < buf.count, buf[i + 1] == 0x0A else { throw .badRequest("bare CR in the request head") }
                return i
            case 0x0A:
                throw .badRequest("bare LF in the request head")
            default:
                i += 1
            }
        }
        throw .badRequest("unterminated line in the request head")
    }

    private func parseRequestLine(_ line: UnsafeRawBufferPointer) throws(HTTP1ParseError) -> (HTTPMethod, String, HTTPVersion) {
        var i = 0
        while i < line.count, HTTPTokens.isTChar(line[i]) { i += 1 }
        guard i > 0, i < line.count, line[i] == 0x20 else { throw .badRequest("malformed request line") }
        let method = HTTPMethod.from(UnsafeRawBufferPointer(rebasing: line[0..<i]))
        let targetStart = i + 1
        var j = targetStart
        while j < line.count, line[j] > 0x20, line[j] < 0x7F { j += 1 }
        guard j > targetStart, j < line.count, line[j] == 0x20 else {
            if j - targetStart > limits.maxTargetLength { throw .targetTooLong }
            throw .badRequest("malformed request-target")
        }
        if j - targetStart > limits.maxTargetLength { throw .targetTooLong }
        let target = String(decoding: UnsafeRawBufferPointer(rebasing: line[targetStart..<j]), as: UTF8.self)
        let versionBytes = UnsafeRawBufferPointer(rebasing: line[(j + 1)...])
        let version = try Self.parseVersion(versionBytes)
        try Self.checkTargetForm(target, method: method)
        return (method, target, version)
    }

    /// The four forms of request-target (RFC 9112 §3.2): origin-form (`/path?query`),
    /// absolute-form (`http://authority/path`, with a valid authority and no userinfo),
    /// authority-form (`host:port`, CONNECT only) and asterisk-form (`*`, OPTIONS only).
    private static func checkTargetForm(_ target: String, method: HTTPMethod) throws(HTTP1ParseError) {
        let t = target.utf8
        if t.first == UInt8(ascii: "/") { return }
        if target == "*" {
            guard method == .options else { throw .badRequest("'*' is a target for OPTIONS only") }
            return
        }
        if method.rawValue == "CONNECT" {
            guard HostSyntax.isValid(target), target.contains(":") else { throw .badRequest("malformed authority-form target") }
            return
        }
        let lower = target.lowercased()
        let scheme = lower.hasPrefix("http://") ? 7 : lower.hasPrefix("https://") ? 8 : 0
        guard scheme > 0 else { throw .badRequest("the request-target must begin with '/' or be an http(s) URI") }
        let rest = target.utf8.dropFirst(scheme)
        let authorityEnd = rest.firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") } ?? rest.endIndex
        let authority = String(Substring(rest[..<authorityEnd])) ?? ""
        guard !authority.isEmpty, !authority.contains("@"), HostSyntax.isValid(authority) else {
            throw .badRequest("malformed authority in an absolute-form target")
        }
    }

    private static func parseVersion(_ v: UnsafeRawBufferPointer) throws(HTTP1ParseError) -> HTTPVersion {
        let isDigit = { (b: UInt8) in b >= 0x30 && b <= 0x39 }
        guard v.count == 8, v.starts(with: "HTTP/".utf8), isDigit(v[5]), v[6] == 0x2E, isDigit(v[7]) else {
            throw .badRequest("malformed HTTP version")
        }
        let version = HTTPVersion(major: Int(v[5] - 0x30), minor: Int(v[7] - 0x30))
        guard version.major == 1 else { throw .unsupportedVersion(version.description) }
        // A higher minor version is served as the highest one supported (RFC 9112 §2.3).
        return version.minor == 0 ? .http1_0 : .http1_1
    }

    private static func parseField(_ line: UnsafeRawBufferPointer) throws(HTTP1ParseError) -> HTTPField {
        guard let first = line.first else { throw .badRequest("empty header line") }
        if first == 0x20 || first == 0x09 { throw .badRequest("obsolete line folding is not allowed") }
        var colon = 0
        while colon < line.count, HTTPTokens.isTChar(line[colon]) { colon += 1 }
        guard colon < line.count, line[colon] == 0x3A else {
            if colon < line.count, line[colon] == 0x20 || line[colon] == 0x09 {
                throw .badRequest("whitespace between a header name and its colon")
            }
            throw .badRequest("malformed header field name")
        }
        guard colon > 0 else { throw .badRequest("empty header field name") }
        var vs = colon + 1, ve = line.count
        while vs < ve, line[vs] == 0x20 || line[vs] == 0x09 { vs += 1 }
        while ve > vs, line[ve - 1] == 0x20 || line[ve - 1] == 0x09 { ve -= 1 }
        for k in vs..<ve {
            let b = line[k]
            if b < 0x20 && b != 0x09 || b == 0x7F { throw .badRequest("control character in a header value") }
        }
        return HTTPField(
            name: String(decoding: UnsafeRawBufferPointer(rebasing: line[0..<colon]), as: UTF8.self),
            value: String(decoding: UnsafeRawBufferPointer(rebasing: line[vs..<ve]), as: UTF8.self)
        )
    }

    // MARK: - Semantics

    /// Framing, persistence, expectations and content negotiation from the fields (RFC 9112 §6,
    /// §9.3; RFC 9110 §7.2, §10.1.1, §12.5.3). Every list-valued field goes through `FieldList`, so
    /// any value is either understood or refused with 400.
    private static func interpret(method: HTTPMethod, target: String, version: HTTPVersion, fields: HTTPFields) throws(HTTP1ParseError) -> RequestHead {
        var host: String?
        var hostCount = 0
        var contentLength: UInt64?
        var hasTransferEncoding = false
        var hasExpect = false
        for field in fields {
            let name = field.name
            if name.asciiCaseInsensitiveEquals("host") {
                hostCount += 1
                host = field.value
            } else if name.asciiCaseInsensitiveEquals("content-length") {
                for part in field.value.split(separator: ",", omittingEmptySubsequences: false) {
                    let text = part.trimmingASCIIWhitespace()
                    guard !text.isEmpty, text.utf8.count <= 19, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                          let value = UInt64(text) else {
                        throw .badRequest("invalid Content-Length")
                    }
                    if let previous = contentLength, previous != value {
                        throw .badRequest("conflicting Content-Length values")
                    }
                    contentLength = value
                }
            } else if name.asciiCaseInsensitiveEquals("transfer-encoding") {
                hasTransferEncoding = true
            } else if name.asciiCaseInsensitiveEquals("expect") {
                hasExpect = true
            }
        }
        if version == .http1_1, hostCount == 0 { throw .badRequest("missing Host header") }
        if hostCount > 1 { throw .badRequest("more than one Host header") }
        if let host, !HostSyntax.isValid(host) { throw .badRequest("invalid Host header") }

        var framing = BodyFraming.none
        if hasTransferEncoding {
            if contentLength != nil { throw .badRequest("both Content-Length and Transfer-Encoding") }
            if version == .http1_0 { throw .badRequest("Transfer-Encoding in an HTTP/1.0 request") }
            let codings = try list(fields, "Transfer-Encoding")
            guard let last = codings.last else { throw .badRequest("empty Transfer-Encoding") }
            if let unknown = codings.first(where: { $0.item != "chunked" }) {
                throw .unsupportedTransferCoding(unknown.item)
            }
            guard last.item == "chunked", last.value == nil, last.parameters.isEmpty, codings.count == 1 else {
                throw .badRequest("chunked must be applied exactly once, last")
            }
            framing = .chunked
        } else if let length = contentLength {
            framing = .length(length)
        }

        let connection = try list(fields, "Connection")
        var keepAlive = version == .http1_1
        if connection.contains(where: { $0.item == "close" }) {
            keepAlive = false
        } else if version == .http1_0, connection.contains(where: { $0.item == "keep-alive" }) {
            keepAlive = true
        }
        var expectsContinue = false
        if hasExpect {
            let expectations = try list(fields, "Expect")
            guard expectations.count == 1, let only = expectations.first, only.item == "100-continue",
                  only.value == nil, only.parameters.isEmpty else {
                throw .expectationFailed(fields.values("Expect").joined(separator: ", "))
            }
            expectsContinue = version == .http1_1
        }
        // A malformed Accept-Encoding is ignored (identity), not refused: it negotiates nothing
        // the request depends on.
        let accepts = FieldList.acceptsGzip(fields)
        return RequestHead(
            method: method, target: target, version: version, fields: fields,
            framing: framing, keepAlive: keepAlive, expectsContinue: expectsContinue,
            acceptsGzip: accepts ?? false, acceptEncodingMalformed: accepts == nil
        )
    }

    private static func list(_ fields: HTTPFields, _ name: String) throws(HTTP1ParseError) -> [FieldListElement] {
        guard let elements = FieldList.parse(fields, name) else { throw .badRequest("malformed \(name) header") }
        return elements
    }

}
