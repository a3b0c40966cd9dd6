import Foundation
import HTTPServer
import PeerDistEngine

/// Content identifiers in paths: base64url without padding, 1 to 1,024 bytes once decoded.
enum ContentID {
    static let maxBytes = 1_024

    /// Decodes an identifier; nil when malformed, empty or too long.
    static func decode(_ text: String) -> [UInt8]? {
        guard !text.isEmpty, text.utf8.count <= (maxBytes * 4 + 2) / 3, text.utf8.count % 4 != 1 else { return nil }
        var values: [UInt8] = []
        values.reserveCapacity(text.utf8.count)
        for c in text.utf8 {
            switch c {
            case 0x41...0x5A: values.append(c - 0x41)
            case 0x61...0x7A: values.append(c - 0x61 + 26)
            case 0x30...0x39: values.append(c - 0x30 + 52)
            case 0x2D: values.append(62)
            case 0x5F: values.append(63)
            default: return nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(values.count * 3 / 4)
        var i = 0
        while i + 4 <= values.count {
            let n = UInt32(values[i]) << 18 | UInt32(values[i + 1]) << 12 | UInt32(values[i + 2]) << 6 | UInt32(values[i + 3])
            out += [UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)]
            i += 4
        }
        let rest = values.count - i
        if rest == 2 {
            guard values[i + 1] & 0x0F == 0 else { return nil } // canonical: unused bits are zero
            out.append(values[i] << 2 | values[i + 1] >> 4)
        } else if rest == 3 {
            guard values[i + 2] & 0x03 == 0 else { return nil }
            out.append(values[i] << 2 | values[i + 1] >> 4)
            out.append(values[i + 1] << 4 | values[i + 2] >> 2)
        }
        guard (1...maxBytes).contains(out.count) else { return nil }
        return out
    }

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// Encodes bytes as base64url without padding.
    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var i = 0
        while i + 3 <= bytes.count {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)], alphabet[Int(n & 63)]]
            i += 3
        }
        if bytes.count - i == 1 {
            let n = UInt32(bytes[i]) << 16
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)]]
        } else if bytes.count - i == 2 {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)]]
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Reading and validating request parameters; every failure is 400 ERROR_INVALID_PARAMETER.
struct Parameters {
    let request: Request

    init(_ request: Request) { self.request = request }

    static func invalid(_ detail: String) -> EngineError { EngineError(.invalidParameter, detail) }

    /// A path parameter that the route guarantees.
    func path(_ name: String) -> String { request.parameters[name] ?? "" }

    /// The `{id}` content identifier.
    func contentID() throws -> [UInt8] {
        guard let id = ContentID.decode(path("id")) else {
            throw Self.invalid("content identifier must be 1 to 1,024 bytes in base64url without padding")
        }
        return id
    }

    /// The `{op}` operation id (caller-chosen names or server `op_` ids share one syntax).
    func operationID() throws -> String {
        let op = path("op")
        guard Self.isOperationName(op) else { throw Self.invalid("operation id must be 1 to 64 of A-Z a-z 0-9 . _ ~ -") }
        return op
    }

    /// The optional caller-chosen operation name `?op=NAME`.
    func chosenOperationName() throws -> String? {
        guard let name = request.queryValue("op") else { return nil }
        guard Self.isOperationName(name) else { throw Self.invalid("op must be 1 to 64 of A-Z a-z 0-9 . _ ~ -") }
        return name
    }

    static func isOperationName(_ s: String) -> Bool {
        guard (1...64).contains(s.utf8.count) else { return false }
        return s.utf8.allSatisfy { c in
            (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39)
                || c == 0x2E || c == 0x5F || c == 0x7E || c == 0x2D
        }
    }

    /// An optional integer query parameter within a range.
    func int(_ name: String, default value: Int? = nil, in range: ClosedRange<Int>) throws -> Int? {
        guard let text = request.queryValue(name) else { return value }
        guard let v = Int(text), range.contains(v) else {
            throw Self.invalid("\(name) must be an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return v
    }

    /// `timeoutMs`, defaulting to 0 (do not wait).
    func timeout() throws -> Duration {
        .milliseconds(try int("timeoutMs", default: 0, in: 0...Int(Int32.max)) ?? 0)
    }

    /// `Prefer: wait=N` (RFC 7240), in seconds; nil when absent.
    func preferWait() -> Int? {
        for element in FieldList.parse(request.headers, "Prefer") ?? [] where element.item == "wait" {
            if let text = element.value, let seconds = Int(text), seconds >= 0 { return seconds }
        }
        return nil
    }

    /// Whether a Content-Type names `application/json` exactly, with or without parameters.
    static func isJSON(_ fields: HTTPFields) -> Bool {
        guard let elements = FieldList.parse(fields, "Content-Type"), elements.count == 1, let element = elements.first else {
            return false
        }
        return element.item == "application/json" && element.value == nil
    }

    /// Decodes the JSON body into `T`; an empty body decodes from `{}`. The body must pass
    /// `StrictJSON` first (no trailing comma, duplicate member, non-integer or out-of-range number,
    /// invalid UTF-8, byte order mark, trailing data or deep nesting), so that nothing is read
    /// leniently or silently as 0.
    func body<T: Decodable>(_ type: T.Type) throws -> T {
        let bytes = request.body.bytes
        if !bytes.isEmpty, request.headers["Content-Type"] != nil, !Self.isJSON(request.headers) {
            throw HTTPError.http(415, "the body must be application/json (with curl: --json '{...}')")
        }
        if !bytes.isEmpty, let failure = StrictJSON.validate(bytes) {
            throw Self.invalid("malformed JSON body: \(failure)")
        }
        do {
            return try JSONDecoder().decode(T.self, from: bytes.isEmpty ? Data("{}".utf8) : Data(bytes))
        } catch {
            throw Self.invalid("malformed JSON body: \(Self.describe(error))")
        }
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context),
             DecodingError.dataCorrupted(let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? "not valid JSON of the expected shape" : "member '\(path)' has the wrong type"
        case DecodingError.keyNotFound(let key, _):
            return "member '\(key.stringValue)' is required"
        default:
            return "not valid JSON"
        }
    }
}
