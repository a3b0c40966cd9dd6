/// Writing JSON string literals (RFC 8259 §7) straight into bytes: quotes, backslashes and
/// control characters escaped, everything else (UTF-8 included) copied as it is.
public enum JSONText {
    /// Appends `s` as a quoted JSON string.
    public static func appendString(_ s: String, to out: inout [UInt8]) {
        out.append(0x22)
        var s = s
        s.withUTF8 { utf8 in
            var start = 0
            for (i, byte) in utf8.enumerated() where byte == 0x22 || byte == 0x5C || byte < 0x20 {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<i]))
                switch byte {
                case 0x22: out.append(contentsOf: [0x5C, 0x22])
                case 0x5C: out.append(contentsOf: [0x5C, 0x5C])
                case 0x0A: out.append(contentsOf: [0x5C, 0x6E])
                case 0x0D: out.append(contentsOf: [0x5C, 0x72])
                case 0x09: out.append(contentsOf: [0x5C, 0x74])
                default:
                    let hex = Array("0123456789abcdef".utf8)
                    out.append(contentsOf: [0x5C, 0x75, 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
                }
                start = i + 1
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start...]))
        }
        out.append(0x22)
    }

    /// Appends the decimal digits of an integer.
    public static func appendInteger<T: BinaryInteger>(_ value: T, to out: inout [UInt8]) {
        if value < 0 {
            out.append(0x2D)
            out.append(contentsOf: String(value.magnitude).utf8)
        } else if let small = Int(exactly: value) {
            ResponseHeadSerializer.appendDecimal(small, to: &out)
        } else {
            out.append(contentsOf: String(value).utf8)
        }
    }
}
