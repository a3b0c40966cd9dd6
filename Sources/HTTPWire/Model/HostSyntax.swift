/// The syntax of a Host field value (RFC 9112 §3.2, RFC 3986 §3.2.2): `uri-host [ ":" port ]`,
/// where the host is an IP literal in brackets or a reg-name (unreserved, pct-encoded, sub-delims;
/// IPv4 addresses are reg-names by syntax). An empty value is allowed (a target with no authority).
public enum HostSyntax {
    /// Whether `value` is a valid Host field value.
    public static func isValid(_ value: String) -> Bool {
        let b = Array(value.utf8)
        var i = 0
        if b.first == 0x5B {  // IP-literal: "[" ( IPv6address / IPvFuture ) "]"
            guard let close = b.firstIndex(of: 0x5D), close > 1 else { return false }
            for c in b[1..<close] where !(isHexDigit(c) || c == 0x3A || c == 0x2E || isUnreserved(c) || isSubDelim(c)) {
                return false
            }
            i = close + 1
        } else {
            while i < b.count, b[i] != 0x3A {
                let c = b[i]
                if c == 0x25 {  // pct-encoded
                    guard i + 2 < b.count, isHexDigit(b[i + 1]), isHexDigit(b[i + 2]) else { return false }
                    i += 3
                    continue
                }
                guard isUnreserved(c) || isSubDelim(c) else { return false }
                i += 1
            }
        }
        guard i < b.count else { return true }
        guard b[i] == 0x3A else { return false }
        let port = b[(i + 1)...]
        return port.count <= 5 && port.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }

    private static func isHexDigit(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c | 0x20 >= 0x61 && c | 0x20 <= 0x66)
    }

    private static func isUnreserved(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c | 0x20 >= 0x61 && c | 0x20 <= 0x7A) || c == 0x2D || c == 0x2E || c == 0x5F || c == 0x7E
    }

    private static func isSubDelim(_ c: UInt8) -> Bool {
        switch c {
        case 0x21, 0x24, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x2B, 0x2C, 0x3B, 0x3D: true
        default: false
        }
    }
}
