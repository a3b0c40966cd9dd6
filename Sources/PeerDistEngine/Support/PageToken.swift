import Base64URL
import Crypto
import Foundation
import PCCRC

/// The one codec of page tokens (`nextPageToken`, `pageToken`): a listing's cursor sealed with
/// AES-GCM under a key derived from the server secret, bound to its scope (the principal, the
/// instance and which listing). A token shows nothing of the cursor (the engine-wide operation
/// serial, say, which would tell how many operations other principals made in between), cannot be
/// made or altered without the secret, and opens only in the listing of the caller it was given to.
public struct PageTokenCodec: Sendable {
    /// The format's version, its first byte.
    static let version: UInt8 = 1
    /// AES-GCM's nonce and tag lengths.
    static let nonceBytes = 12
    static let tagBytes = 16
    /// The longest cursor a token carries (an instance handle at most); a longer token is refused
    /// before it is decoded.
    public static let maxCursorBytes = 128
    /// The longest token text: base64url of version, nonce, the longest cursor and the tag.
    public static let maxTokenLength = ((1 + nonceBytes + maxCursorBytes + tagBytes) * 4 + 2) / 3

    /// The AES-256 key's bytes (SymmetricKey is not Sendable).
    private let keyBytes: [UInt8]
    private var key: SymmetricKey { SymmetricKey(data: keyBytes) }

    /// The codec of the service whose server secret is `secret`.
    public init(secret: ServerSecret) {
        let key = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: secret.keyBytes), info: Data("peerdist page tokens v1".utf8),
            outputByteCount: 32)
        keyBytes = key.withUnsafeBytes { Array($0) }
    }

    /// Seals `cursor` (at most `maxCursorBytes`) for `scope`.
    public func seal(_ cursor: [UInt8], scope: [UInt8]) -> String {
        precondition(cursor.count <= Self.maxCursorBytes, "a page cursor is at most \(Self.maxCursorBytes) bytes")
        // Sealing fails only on a nonce or key of the wrong size, which these are not.
        guard let box = try? AES.GCM.seal(cursor, using: key, authenticating: Self.header + scope) else {
            preconditionFailure("AES-GCM refused a 32-byte key and a random nonce")
        }
        return Base64URL.encode(Self.header + Array(box.nonce) + Array(box.ciphertext) + Array(box.tag))
    }

    /// The cursor sealed in `token` for `scope`, or nil when the token is malformed, was altered,
    /// was made with another secret or for another scope.
    public func open(_ token: some StringProtocol, scope: [UInt8]) -> [UInt8]? {
        guard token.utf8.count <= Self.maxTokenLength, let bytes = Base64URL.decode(token),
              bytes.count >= 1 + Self.nonceBytes + Self.tagBytes, bytes[0] == Self.version
        else { return nil }
        let sealed = bytes.dropFirst()
        let nonceEnd = sealed.startIndex + Self.nonceBytes
        let tagStart = sealed.endIndex - Self.tagBytes
        guard let nonce = try? AES.GCM.Nonce(data: sealed[sealed.startIndex..<nonceEnd]),
              let box = try? AES.GCM.SealedBox(nonce: nonce, ciphertext: sealed[nonceEnd..<tagStart], tag: sealed[tagStart...]),
              let cursor = try? AES.GCM.open(box, using: key, authenticating: Self.header + scope)
        else { return nil }
        return Array(cursor)
    }

    /// The scope of a listing: its name and the fields that select it, each length-prefixed so
    /// that no two scopes share bytes.
    public static func scope(_ fields: String...) -> [UInt8] {
        var bytes: [UInt8] = []
        for field in fields {
            let utf8 = Array(field.utf8)
            withUnsafeBytes(of: UInt32(utf8.count).bigEndian) { bytes += $0 }
            bytes += utf8
        }
        return bytes
    }

    private static let header: [UInt8] = [version]
}
