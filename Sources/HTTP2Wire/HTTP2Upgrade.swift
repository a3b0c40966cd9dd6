import Base64URL
import HTTPWire

/// Detecting HTTP/2 on a cleartext connection: the prior-knowledge preface, and the HTTP/1.1
/// `Upgrade: h2c` request (RFC 7540 §3.2).
public enum HTTP2Upgrade {
    /// The client connection preface (RFC 9113 §3.4).
    public static let preface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    /// Whether the first bytes of a connection are the HTTP/2 preface: true when all 24 bytes
    /// match, false as soon as one differs, nil while the bytes so far are a prefix of it.
    public static func looksLikePreface(_ prefix: UnsafeRawBufferPointer) -> Bool? {
        let n = min(prefix.count, preface.count)
        for i in 0..<n where prefix[i] != preface[i] { return false }
        return n == preface.count ? true : nil
    }

    /// The answer that switches an upgraded connection to HTTP/2; write it, then the session's output.
    public static let switchingProtocols: [UInt8] = Array("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n".utf8)

    /// The decoded SETTINGS payload of an HTTP/1.1 request that asks for h2c, or nil when it does
    /// not ask, or asks wrongly: `Upgrade` must list `h2c`, `Connection` must list both `Upgrade`
    /// and `HTTP2-Settings`, and exactly one `HTTP2-Settings` field must hold base64url (no
    /// padding) of a whole number of 6-byte settings.
    public static func settingsPayload(from fields: HTTPFields) -> [UInt8]? {
        guard let upgrades = FieldList.parse(fields, "Upgrade"), upgrades.contains(where: { $0.item == "h2c" }),
              let connection = FieldList.parse(fields, "Connection").map({ Set($0.map(\.item)) }),
              connection.contains("upgrade"), connection.contains("http2-settings")
        else { return nil }
        let settings = fields.values("http2-settings")
        guard settings.count == 1, let payload = Base64URL.decode(settings[0].trimmingASCIIWhitespace(), allowingPadding: true),
              payload.count % 6 == 0, payload.count <= 6 * 64
        else { return nil }
        return payload
    }
}
