/// Character classes of RFC 9110 §5.6.2.
package enum HTTPTokens {
    /// tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
    private static let tchar: [Bool] = {
        var table = [Bool](repeating: false, count: 256)
        for b in UInt8(0x30)...0x39 { table[Int(b)] = true }
        for b in UInt8(0x41)...0x5A { table[Int(b)] = true }
        for b in UInt8(0x61)...0x7A { table[Int(b)] = true }
        for c in "!#$%&'*+-.^_`|~".utf8 { table[Int(c)] = true }
        return table
    }()

    /// Whether `byte` may appear in a token (method, header name).
    @inline(__always)
    package static func isTChar(_ byte: UInt8) -> Bool { tchar[Int(byte)] }
}
