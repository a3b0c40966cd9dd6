/// One element of a comma-separated field value (RFC 9110 §5.6.1), such as `gzip;q=0.5`,
/// `wait=5` (RFC 7240) or `application/json; charset=utf-8` (RFC 9110 §8.3.1).
public struct FieldListElement: Sendable, Equatable {
    /// The element's item, lowercased: `gzip`, `wait`, `application/json`.
    public var item: String
    /// The value after the item's own `=`, when it has one (`5` of `wait=5`), unquoted.
    public var value: String?
    /// The `;` parameters in order: names lowercased, values unquoted (nil when a parameter has none).
    public var parameters: [(name: String, value: String?)]

    /// Creates an element.
    public init(item: String, value: String? = nil, parameters: [(name: String, value: String?)] = []) {
        self.item = item
        self.value = value
        self.parameters = parameters
    }

    /// The value of the first parameter of that (lowercase) name.
    public func parameter(_ name: String) -> String?? {
        parameters.first { $0.name == name }.map(\.value)
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.item == b.item && a.value == b.value && a.parameters.elementsEqual(b.parameters) { $0 == $1 }
    }
}

/// The one parser of list-valued header fields. Total: any bytes give either the elements or nil
/// (malformed), never a trap. Empty elements (`a,,b`, a lone `,`) are ignored as §5.6.1 asks.
///
/// ```
/// list    = [ element ] *( OWS "," OWS [ element ] )
/// element = item [ BWS "=" BWS word ] *( OWS ";" OWS [ name [ BWS "=" BWS word ] ] )
/// item    = 1*( tchar / "/" )      word = token / quoted-string
/// ```
public enum FieldList {
    /// The elements of every field of that name, in order; nil when any of them is malformed.
    public static func parse(_ fields: HTTPFields, _ name: String) -> [FieldListElement]? {
        var out: [FieldListElement] = []
        for value in fields.values(name) {
            guard let elements = parse(value) else { return nil }
            out.append(contentsOf: elements)
        }
        return out
    }

    /// The elements of one field value; nil when it is malformed.
    public static func parse(_ value: String) -> [FieldListElement]? {
        var scanner = Scanner(Array(value.utf8))
        var out: [FieldListElement] = []
        while true {
            scanner.skipWhitespace()
            if scanner.atEnd { return out }
            if scanner.take(0x2C) { continue }  // an empty element
            guard let element = scanner.element() else { return nil }
            out.append(element)
            scanner.skipWhitespace()
            if scanner.atEnd { return out }
            guard scanner.take(0x2C) else { return nil }
        }
    }

    /// Whether Accept-Encoding allows gzip (RFC 9110 §12.5.3): its own qvalue, else that of `*`;
    /// no field at all accepts nothing but identity. Nil when the field is malformed.
    public static func acceptsGzip(_ fields: HTTPFields) -> Bool? {
        guard let elements = parse(fields, "Accept-Encoding") else { return nil }
        var gzip: Int?
        var any: Int?
        for element in elements {
            var q = 1000
            if let parameter = element.parameter("q") {
                guard let text = parameter, let value = qvalue(text) else { return nil }
                q = value
            }
            switch element.item {
            case "gzip", "x-gzip": gzip = q
            case "*": any = q
            default: break
            }
        }
        return (gzip ?? any ?? 0) > 0
    }

    /// A qvalue (RFC 9110 §12.4.2) in thousandths, 0...1000; nil when malformed.
    public static func qvalue(_ text: String) -> Int? {
        let b = Array(text.utf8)
        guard let first = b.first, first == 0x30 || first == 0x31 else { return nil }
        if b.count == 1 { return first == 0x31 ? 1000 : 0 }
        guard b[1] == 0x2E, b.count <= 5 else { return nil }
        var thousandths = 0, scale = 100
        for digit in b[2...] {
            guard digit >= 0x30, digit <= 0x39 else { return nil }
            thousandths += Int(digit - 0x30) * scale
            scale /= 10
        }
        if first == 0x31 { return thousandths == 0 ? 1000 : nil }
        return thousandths
    }

    private struct Scanner {
        let bytes: [UInt8]
        var i = 0

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var atEnd: Bool { i >= bytes.count }
        var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

        mutating func take(_ byte: UInt8) -> Bool {
            guard peek == byte else { return false }
            i += 1
            return true
        }

        mutating func skipWhitespace() {
            while let b = peek, b == 0x20 || b == 0x09 { i += 1 }
        }

        mutating func run(allowingSlash: Bool) -> String? {
            let start = i
            while let b = peek, HTTPTokens.isTChar(b) || (allowingSlash && b == 0x2F) { i += 1 }
            guard i > start else { return nil }
            return String(decoding: bytes[start..<i], as: UTF8.self).lowercased()
        }

        /// token / quoted-string, after an `=`; case is kept.
        mutating func word() -> String? {
            guard take(0x22) else {
                let start = i
                while let b = peek, HTTPTokens.isTChar(b) { i += 1 }
                guard i > start else { return nil }
                return String(decoding: bytes[start..<i], as: UTF8.self)
            }
            var out: [UInt8] = []
            while let b = peek {
                i += 1
                switch b {
                case 0x22:
                    return String(decoding: out, as: UTF8.self)
                case 0x5C:
                    guard let escaped = peek, escaped == 0x09 || (escaped >= 0x20 && escaped != 0x7F) else { return nil }
                    out.append(escaped)
                    i += 1
                case 0x09, 0x20...0x7E, 0x80...0xFF:
                    out.append(b)
                default:
                    return nil
                }
            }
            return nil  // unterminated
        }

        /// `BWS "=" BWS word` when an `=` follows; .some(nil) when none does; nil when malformed.
        mutating func optionalAssignment() -> String?? {
            let mark = i
            skipWhitespace()
            guard take(0x3D) else {
                i = mark
                return .some(nil)
            }
            skipWhitespace()
            guard let w = word() else { return nil }
            return .some(w)
        }

        mutating func element() -> FieldListElement? {
            guard let item = run(allowingSlash: true), let value = optionalAssignment() else { return nil }
            var element = FieldListElement(item: item, value: value)
            while true {
                let mark = i
                skipWhitespace()
                guard take(0x3B) else {
                    i = mark
                    return element
                }
                skipWhitespace()
                guard let b = peek, HTTPTokens.isTChar(b) else { continue }  // `a;` or `a; ;b`
                guard let name = run(allowingSlash: false), let v = optionalAssignment() else { return nil }
                element.parameters.append((name, v))
            }
        }
    }
}
