/// Base64url without padding (RFC 4648 §5): the one codec of the project (content identifiers,
/// handles, page tokens, HTTP2-Settings, the client's identifiers).
public enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// Encodes bytes, without padding.
    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        let bytes = Array(bytes)
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var i = 0
        while i + 3 <= bytes.count {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out.append(alphabet[Int(n >> 18 & 63)])
            out.append(alphabet[Int(n >> 12 & 63)])
            out.append(alphabet[Int(n >> 6 & 63)])
            out.append(alphabet[Int(n & 63)])
            i += 3
        }
        if bytes.count - i == 1 {
            let n = UInt32(bytes[i]) << 16
            out.append(alphabet[Int(n >> 18 & 63)])
            out.append(alphabet[Int(n >> 12 & 63)])
        } else if bytes.count - i == 2 {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out.append(alphabet[Int(n >> 18 & 63)])
            out.append(alphabet[Int(n >> 12 & 63)])
            out.append(alphabet[Int(n >> 6 & 63)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Each byte's 6-bit value in the alphabet; 0xFF for bytes outside it.
    private static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (value, byte) in alphabet.enumerated() { table[Int(byte)] = UInt8(value) }
        return table
    }()

    /// Decodes canonical base64url: only the url-safe alphabet, no length of 1 modulo 4, unused
    /// bits zero; with `allowingPadding`, trailing `=` (up to two) are accepted and ignored.
    /// Total on any input: nil when malformed.
    public static func decode(_ text: some StringProtocol, allowingPadding: Bool = false) -> [UInt8]? {
        if let decoded = text.utf8.withContiguousStorageIfAvailable({ decode($0, allowingPadding: allowingPadding) }) {
            return decoded
        }
        return Array(text.utf8).withUnsafeBufferPointer { decode($0, allowingPadding: allowingPadding) }
    }

    /// Decodes in one pass, straight into the result.
    private static func decode(_ text: UnsafeBufferPointer<UInt8>, allowingPadding: Bool) -> [UInt8]? {
        var count = text.count
        if allowingPadding {
            var padding = 0
            while count > 0, text[count - 1] == UInt8(ascii: "="), padding < 2 {
                count -= 1
                padding += 1
            }
        }
        guard count % 4 != 1 else { return nil }
        return values.withUnsafeBufferPointer { table -> [UInt8]? in
            func value(_ index: Int) -> UInt32 { UInt32(table[Int(text[index])]) }
            var out: [UInt8] = []
            out.reserveCapacity(count / 4 * 3 + 2)
            var i = 0
            while i + 4 <= count {
                let a = value(i), b = value(i + 1), c = value(i + 2), d = value(i + 3)
                guard (a | b | c | d) <= 63 else { return nil }
                let n = a << 18 | b << 12 | c << 6 | d
                out.append(UInt8(truncatingIfNeeded: n >> 16))
                out.append(UInt8(truncatingIfNeeded: n >> 8))
                out.append(UInt8(truncatingIfNeeded: n))
                i += 4
            }
            switch count - i {
            case 2:
                let a = value(i), b = value(i + 1)
                // Canonical: the unused bits are zero.
                guard (a | b) <= 63, b & 0x0F == 0 else { return nil }
                out.append(UInt8(truncatingIfNeeded: a << 2 | b >> 4))
            case 3:
                let a = value(i), b = value(i + 1), c = value(i + 2)
                guard (a | b | c) <= 63, c & 0x03 == 0 else { return nil }
                out.append(UInt8(truncatingIfNeeded: a << 2 | b >> 4))
                out.append(UInt8(truncatingIfNeeded: b << 4 | c >> 2))
            default:
                break
            }
            return out
        }
    }
}
