/// A strict RFC 8259 validator, run on every JSON request body before it is decoded, so that what
/// Foundation's decoder would accept leniently or turn silently into 0 is refused with 400 instead.
///
/// Beyond RFC 8259 it refuses what no body of this API needs and a decoder may misread: duplicate
/// member names, numbers that are not integers (a fraction or exponent, `-0`) or lie outside
/// `Int64.min...UInt64.max`, unpaired surrogate escapes, and nesting deeper than `maxDepth`. Any
/// byte array gives either `nil` (valid) or a failure: no index, unwrap or arithmetic can trap,
/// and the recursion is bounded by `maxDepth`.
package enum StrictJSON {
    /// Deepest nesting of arrays and objects accepted.
    package static let maxDepth = 64

    /// Why a document was refused, and at which byte.
    package struct Failure: Error, Equatable, CustomStringConvertible {
        package let offset: Int
        package let reason: String
        package var description: String { "\(reason) at byte \(offset)" }
    }

    /// `nil` when `bytes` is one valid JSON value under these rules, else why not.
    package static func validate(_ bytes: [UInt8]) -> Failure? {
        var parser = Parser(bytes: bytes)
        do {
            try parser.document()
            return nil
        } catch {
            return error
        }
    }

    private struct Parser {
        let bytes: [UInt8]
        var index = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        private var current: UInt8? { index < bytes.count ? bytes[index] : nil }

        private func fail(_ reason: String) -> Failure { Failure(offset: index, reason: reason) }

        mutating func document() throws(Failure) {
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { throw fail("a byte order mark is not allowed") }
            skipWhitespace()
            try value(depth: 1)
            skipWhitespace()
            guard index == bytes.count else { throw fail("unexpected data after the JSON value") }
        }

        private mutating func skipWhitespace() {
            while let c = current, c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D { index += 1 }
        }

        private mutating func value(depth: Int) throws(Failure) {
            guard depth <= StrictJSON.maxDepth else { throw fail("nested deeper than \(StrictJSON.maxDepth) levels") }
            guard let c = current else { throw fail("unexpected end of the body") }
            switch c {
            case 0x7B: try object(depth: depth)
            case 0x5B: try array(depth: depth)
            case 0x22: _ = try string()
            case 0x2D, 0x30...0x39: try number()
            case 0x74: try literal("true")
            case 0x66: try literal("false")
            case 0x6E: try literal("null")
            default: throw fail("unexpected byte 0x\(String(c, radix: 16))")
            }
        }

        private mutating func literal(_ word: String) throws(Failure) {
            for expected in word.utf8 {
                guard current == expected else { throw fail("malformed literal (expected \(word))") }
                index += 1
            }
        }

        private mutating func object(depth: Int) throws(Failure) {
            index += 1
            skipWhitespace()
            if current == 0x7D {
                index += 1
                return
            }
            var names = Set<[UInt8]>()
            while true {
                guard current == 0x22 else {
                    throw fail(current == 0x7D ? "trailing comma in an object" : "expected a member name")
                }
                let name = try string()
                guard names.insert(name).inserted else {
                    throw fail("duplicate member '\(String(decoding: name, as: UTF8.self))'")
                }
                skipWhitespace()
                guard current == 0x3A else { throw fail("expected ':' after a member name") }
                index += 1
                skipWhitespace()
                try value(depth: depth + 1)
                skipWhitespace()
                switch current {
                case 0x2C:
                    index += 1
                    skipWhitespace()
                case 0x7D:
                    index += 1
                    return
                default:
                    throw fail("expected ',' or '}' in an object")
                }
            }
        }

        private mutating func array(depth: Int) throws(Failure) {
            index += 1
            skipWhitespace()
            if current == 0x5D {
                index += 1
                return
            }
            while true {
                if current == 0x5D { throw fail("trailing comma in an array") }
                try value(depth: depth + 1)
                skipWhitespace()
                switch current {
                case 0x2C:
                    index += 1
                    skipWhitespace()
                case 0x5D:
                    index += 1
                    return
                default:
                    throw fail("expected ',' or ']' in an array")
                }
            }
        }

        /// An integer: `-?(0|[1-9][0-9]*)` within `Int64.min...UInt64.max`.
        private mutating func number() throws(Failure) {
            let start = index
            let negative = current == 0x2D
            if negative { index += 1 }
            guard let first = current, first >= 0x30, first <= 0x39 else { throw fail("malformed number") }
            var magnitude: UInt64 = 0
            var overflow = false
            if first == 0x30 {
                index += 1
            } else {
                while let c = current, c >= 0x30, c <= 0x39 {
                    let (times, o1) = magnitude.multipliedReportingOverflow(by: 10)
                    let (plus, o2) = times.addingReportingOverflow(UInt64(c - 0x30))
                    overflow = overflow || o1 || o2
                    magnitude = plus
                    index += 1
                }
            }
            if let c = current, c == 0x2E || c == 0x65 || c == 0x45 {
                throw Failure(offset: start, reason: "numbers must be integers, without fraction or exponent")
            }
            if let c = current, c >= 0x30, c <= 0x39 { throw Failure(offset: start, reason: "a number must not have a leading zero") }
            if negative && magnitude == 0 && !overflow { throw Failure(offset: start, reason: "-0 is not an integer") }
            if overflow || (negative && magnitude > UInt64(Int64.max) + 1) {
                throw Failure(offset: start, reason: "integer out of range")
            }
        }

        /// A string's content as UTF-8 (escapes resolved), for comparing member names.
        private mutating func string() throws(Failure) -> [UInt8] {
            index += 1
            var out: [UInt8] = []
            while true {
                guard let c = current else { throw fail("unterminated string") }
                switch c {
                case 0x22:
                    index += 1
                    return out
                case 0x5C:
                    try escape(into: &out)
                case 0x00..<0x20:
                    throw fail("unescaped control character in a string")
                case 0x20..<0x80:
                    out.append(c)
                    index += 1
                default:
                    try utf8Sequence(into: &out)
                }
            }
        }

        private mutating func escape(into out: inout [UInt8]) throws(Failure) {
            index += 1
            guard let c = current else { throw fail("unterminated escape") }
            index += 1
            switch c {
            case 0x22, 0x5C, 0x2F: out.append(c)
            case 0x62: out.append(0x08)
            case 0x66: out.append(0x0C)
            case 0x6E: out.append(0x0A)
            case 0x72: out.append(0x0D)
            case 0x74: out.append(0x09)
            case 0x75:
                var scalar = try hex4()
                if (0xD800...0xDBFF).contains(scalar) {
                    guard current == 0x5C, index + 1 < bytes.count, bytes[index + 1] == 0x75 else {
                        throw fail("unpaired surrogate escape")
                    }
                    index += 2
                    let low = try hex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw fail("unpaired surrogate escape") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    throw fail("unpaired surrogate escape")
                }
                guard let unicode = Unicode.Scalar(scalar) else { throw fail("invalid escape") }
                out.append(contentsOf: Array(String(Character(unicode)).utf8))
            default:
                throw fail("invalid escape")
            }
        }

        private mutating func hex4() throws(Failure) -> UInt32 {
            var value: UInt32 = 0
            for _ in 0..<4 {
                guard let c = current else { throw fail("unterminated \\u escape") }
                let digit: UInt32
                switch c {
                case 0x30...0x39: digit = UInt32(c - 0x30)
                case 0x41...0x46: digit = UInt32(c - 0x41 + 10)
                case 0x61...0x66: digit = UInt32(c - 0x61 + 10)
                default: throw fail("malformed \\u escape")
                }
                value = value << 4 | digit
                index += 1
            }
            return value
        }

        /// One well-formed UTF-8 sequence (RFC 3629: no overlong forms, surrogates or values past U+10FFFF).
        private mutating func utf8Sequence(into out: inout [UInt8]) throws(Failure) {
            guard let lead = current else { throw fail("unterminated string") }
            let count: Int
            var range: ClosedRange<UInt8> = 0x80...0xBF
            switch lead {
            case 0xC2...0xDF: count = 2
            case 0xE0: count = 3; range = 0xA0...0xBF
            case 0xE1...0xEC, 0xEE...0xEF: count = 3
            case 0xED: count = 3; range = 0x80...0x9F
            case 0xF0: count = 4; range = 0x90...0xBF
            case 0xF1...0xF3: count = 4
            case 0xF4: count = 4; range = 0x80...0x8F
            default: throw fail("invalid UTF-8")
            }
            guard index + count <= bytes.count else { throw fail("invalid UTF-8") }
            for k in 1..<count {
                let b = bytes[index + k]
                guard (k == 1 ? range : 0x80...0xBF).contains(b) else { throw fail("invalid UTF-8") }
            }
            out.append(contentsOf: bytes[index..<index + count])
            index += count
        }
    }
}
