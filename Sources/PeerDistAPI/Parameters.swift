import Base64URL
import Foundation
import HTTPServer
import PeerDistEngine

/// Content identifiers in paths: base64url without padding, 1 to 1,024 bytes once decoded.
enum ContentID {
    static let maxBytes = 1_024

    /// Decodes an identifier; nil when malformed, empty or too long.
    static func decode(_ text: String) -> [UInt8]? {
        guard !text.isEmpty, text.utf8.count <= (maxBytes * 4 + 2) / 3, let bytes = Base64URL.decode(text),
              (1...maxBytes).contains(bytes.count)
        else { return nil }
        return bytes
    }

    /// Encodes bytes as base64url without padding.
    static func encode(_ bytes: [UInt8]) -> String { Base64URL.encode(bytes) }
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
