import Foundation
import PeerDistAPI
import PeerDistEngine
import ServerTesting
import Testing

/// JSON bodies are parsed strictly (RFC 8259 plus the rules of `StrictJSON`), and only
/// `application/json` (with parameters) is JSON.
@Suite struct StrictJSONTests {
    static let id = APIFixture.contentID("content-1")

    static let refused: [(String, [UInt8])] = [
        ("trailing comma in an object", Array(#"{"contentLength":10,}"#.utf8)),
        ("trailing comma in an array", Array(#"{"contentLength":10,"x":[1,]}"#.utf8)),
        ("tiny exponent", Array(#"{"contentLength":1e-400}"#.utf8)),
        ("fraction", Array(#"{"contentLength":2.5}"#.utf8)),
        ("exponent", Array(#"{"contentLength":1e2}"#.utf8)),
        ("huge exponent", Array(#"{"contentLength":1e400}"#.utf8)),
        ("2^64", Array(#"{"contentLength":18446744073709551616}"#.utf8)),
        ("negative zero", Array(#"{"version":-0}"#.utf8)),
        ("negative into unsigned", Array(#"{"contentLength":-1}"#.utf8)),
        ("leading zero", Array(#"{"contentLength":01}"#.utf8)),
        ("duplicate key", Array(#"{"version":1,"version":2}"#.utf8)),
        ("duplicate key by escape", Array(#"{"version":1,"vers\u0069on":2}"#.utf8)),
        ("invalid UTF-8", Array(#"{"port":""#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8)),
        ("overlong UTF-8", Array(#"{"port":""#.utf8) + [0xC0, 0xAF] + Array(#""}"#.utf8)),
        ("byte order mark", [0xEF, 0xBB, 0xBF] + Array(#"{"version":1}"#.utf8)),
        ("trailing garbage", Array(#"{"version":1} x"#.utf8)),
        ("two values", Array(#"{"version":1}{}"#.utf8)),
        ("deep nesting", Array((#"{"x":"# + String(repeating: "[", count: 100) + String(repeating: "]", count: 100) + "}").utf8)),
        ("lone surrogate", Array(#"{"port":"\ud800"}"#.utf8)),
        ("wrong type", Array(#"{"version":"1"}"#.utf8)),
        ("not an object", Array("[]".utf8)),
        ("NUL", Array(#"{"port":"a"#.utf8) + [0] + Array(#""}"#.utf8)),
    ]

    /// A POST with exactly one Content-Type.
    func post(_ client: RawHTTPClient, _ path: String, _ body: [UInt8], type: String = "application/json") async throws -> RawResponse {
        try await client.send(Array("POST \(path) HTTP/1.1\r\nHost: t\r\nContent-Type: \(type)\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body)
        return try await client.readResponse()
    }

    @Test(arguments: 0..<refused.count) func refusedBodiesAre400With87(_ index: Int) async throws {
        let (name, body) = Self.refused[index]
        let f = try await APIFixture.start()
        let h = try await f.startup()
        let r = try await post(f.client, "/instances/\(h)/content/\(Self.id)/streams", body)
        #expect(r.status == 400, "\(name): \(r.status) \(r.text)")
        #expect(r.code == 87, "\(name)")
        #expect(r.header("Content-Type") == "application/problem+json", "\(name)")
        await f.stop()
    }

    @Test func contentTypeMustBeApplicationJSON() async throws {
        let f = try await APIFixture.start()
        let h = try await f.startup()
        let body = Array(#"{"version":1}"#.utf8)
        for type in ["application/jsonx", "application/json+x", "text/json", "application/json, text/plain", "application/json;", ";"] {
            let r = try await post(f.client, "/instances/\(h)/content/\(Self.id)/streams", body, type: type)
            #expect(r.status == 415 || (type == "application/json;" && r.status == 201), "\(type): \(r.status) \(r.text)")
            if r.status == 415 { #expect(r.code == 87) }
            if r.status == 201, let s = r.json["stream"] as? String {
                _ = try await f.client.request("DELETE", "/instances/\(h)/content/\(Self.id)/streams/\(s)")
            }
        }
        for type in ["application/json", "application/json; charset=utf-8", "Application/JSON"] {
            let r = try await post(f.client, "/instances/\(h)/content/\(Self.id)/streams", body, type: type)
            #expect(r.status == 201, "\(type): \(r.status) \(r.text)")
            if let s = r.json["stream"] as? String {
                _ = try await f.client.request("DELETE", "/instances/\(h)/content/\(Self.id)/streams/\(s)")
            }
        }
        await f.stop()
    }

    /// Valid documents pass, including every integer at the edge of the range and escapes.
    @Test func validatorAcceptsValidDocuments() {
        for text in [#"{}"#, #" { "a" : [ 1 , -2 , 0 , true , false , null , "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00" ] } "#,
                     #"{"a":18446744073709551615,"b":-9223372036854775808}"#, "[[[]]]", #""é""#, "0"] {
            #expect(StrictJSON.validate(Array(text.utf8)) == nil, "\(text)")
        }
        let deepest = String(repeating: "[", count: StrictJSON.maxDepth) + String(repeating: "]", count: StrictJSON.maxDepth)
        #expect(StrictJSON.validate(Array(deepest.utf8)) == nil)
        let tooDeep = "[" + deepest + "]"
        #expect(StrictJSON.validate(Array(tooDeep.utf8)) != nil)
        #expect(StrictJSON.validate(Array(#"{"b":-9223372036854775809}"#.utf8)) != nil)
        #expect(StrictJSON.validate([]) != nil)
    }

    /// Total: no input traps (a deterministic sweep of mutations of valid documents).
    @Test func validatorIsTotal() {
        let seeds = [#"{"contentLength":10,"version":2,"port":"default","key":1}"#, #"[1,[2,{"a":"\u00e9"}]]"#]
        var state: UInt64 = 0x1234_5678
        var refused = 0
        for seed in seeds {
            let base = Array(seed.utf8)
            for _ in 0..<5_000 {
                var bytes = base
                for _ in 0..<3 {
                    state = state &* 6364136223846793005 &+ 1442695040888963407
                    let position = Int(state >> 33) % max(1, bytes.count)
                    let byte = UInt8(truncatingIfNeeded: state >> 17)
                    switch state & 3 {
                    case 0: bytes[position] = byte
                    case 1: bytes.insert(byte, at: position)
                    case 2: if !bytes.isEmpty { bytes.remove(at: position) }
                    default: bytes = Array(bytes.prefix(position))
                    }
                }
                if StrictJSON.validate(bytes) != nil { refused += 1 }
            }
        }
        #expect(refused > 0)
    }
}
