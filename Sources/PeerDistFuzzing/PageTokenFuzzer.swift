import PCCRC
import PeerDistEngine

/// FuzzPageToken: the page-token codec on any bytes. The first byte splits the rest into a scope
/// and a token text. Opening must return a cursor or nil, never trap, and never read past its
/// bounds.
///
/// Checks on every input: an opened cursor is at most `maxCursorBytes`; a cursor made of the
/// input's bytes seals into a token of at most `maxTokenLength` that opens to the same cursor
/// under its scope, and under no other (one byte more, or the scope of another listing); every
/// one-character change of that token is refused.
public enum PageTokenFuzzer {
    static let codec = PageTokenCodec(secret: ServerSecret(keyBytes: Array("fuzzing page tokens".utf8)))
    static let other = PageTokenCodec(secret: ServerSecret(keyBytes: Array("another secret".utf8)))

    public static func run(_ buffer: UnsafeRawBufferPointer) {
        let bytes = Array(buffer)
        guard let first = bytes.first else { return }
        let rest = bytes.dropFirst()
        let cut = min(Int(first), rest.count)
        let scope = Array(rest.prefix(cut))
        let tail = rest.dropFirst(cut)
        let text = String(decoding: tail, as: UTF8.self)

        if let cursor = codec.open(text, scope: scope) {
            precondition(cursor.count <= PageTokenCodec.maxCursorBytes, "an opened cursor is too long")
        }

        let cursor = Array(tail.prefix(PageTokenCodec.maxCursorBytes))
        let token = codec.seal(cursor, scope: scope)
        precondition(token.utf8.count <= PageTokenCodec.maxTokenLength, "a token is longer than its bound")
        precondition(codec.open(token, scope: scope) == cursor, "a token does not open to its cursor")
        precondition(codec.open(token, scope: scope + [0]) == nil, "a token opens under another scope")
        precondition(other.open(token, scope: scope) == nil, "a token opens under another secret")
        let characters = Array(token.utf8)
        let position = Int(first) % characters.count
        var altered = characters
        altered[position] = altered[position] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        precondition(codec.open(String(decoding: altered, as: UTF8.self), scope: scope) == nil, "an altered token opens")
    }
}
