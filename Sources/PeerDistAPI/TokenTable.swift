import Crypto

/// The callers a tokens file names: one `NAME TOKEN` pair per line, `#` starts a comment, blank
/// lines are ignored, one principal per name (API.md, Access). Only SHA-256 digests of the tokens
/// are kept, and a token is looked up by comparing its digest with every entry's, in fixed work,
/// so that neither the time taken nor an early exit tells a caller how close a guess came.
public struct TokenTable: Sendable {
    // MARK: - Limits

    /// Largest file accepted, in bytes.
    public static let maxFileBytes = 1 << 20
    /// Most lines in a file (comments and blank lines included).
    public static let maxLines = 10_000
    /// Longest line, in bytes, without its line ending.
    public static let maxLineBytes = 1_024
    /// Longest principal name, in bytes.
    public static let maxNameBytes = 64
    /// Shortest token, in bytes: a guessable token is refused.
    public static let minTokenBytes = 16
    /// Longest token, in bytes.
    public static let maxTokenBytes = 512

    /// Why a tokens file was refused: what and where, never a token's text.
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        /// The 1-based line, or 0 for the file as a whole.
        public let line: Int
        /// What is wrong.
        public let reason: String

        /// Creates an error.
        public init(line: Int, reason: String) {
            self.line = line
            self.reason = reason
        }

        public var description: String { line > 0 ? "line \(line): \(reason)" : reason }
    }

    // MARK: - Properties

    private struct Entry: Sendable {
        let name: String
        let digest: [UInt8]
    }

    private let entries: [Entry]

    /// The principals, in file order.
    public var names: [String] { entries.map(\.name) }

    /// How many principals the table names.
    public var count: Int { entries.count }

    // MARK: - Parsing

    /// Parses a tokens file. Total on any bytes: it returns a table or throws, never traps.
    /// - Parameter bytes: The file's contents.
    /// - Returns: The table, with at least one principal.
    /// - Throws: `ParseError` for a file too large, too many or too long lines, a line that is not
    ///   `NAME TOKEN`, a malformed name or token, a name or a token given twice, or no entries.
    public static func parse(_ bytes: [UInt8]) throws(ParseError) -> TokenTable {
        guard bytes.count <= maxFileBytes else {
            throw ParseError(line: 0, reason: "the file is larger than \(maxFileBytes) bytes")
        }
        var entries: [Entry] = []
        var names: Set<String> = []
        var digests: Set<[UInt8]> = []
        var lineNumber = 0
        var start = 0
        while start < bytes.count {
            var end = start
            while end < bytes.count, bytes[end] != 0x0A { end += 1 }
            lineNumber += 1
            guard lineNumber <= maxLines else {
                throw ParseError(line: 0, reason: "the file has more than \(maxLines) lines")
            }
            var lineEnd = end
            if lineEnd > start, bytes[lineEnd - 1] == 0x0D { lineEnd -= 1 }
            guard lineEnd - start <= maxLineBytes else {
                throw ParseError(line: lineNumber, reason: "longer than \(maxLineBytes) bytes")
            }
            if let entry = try parseLine(bytes[start..<lineEnd], number: lineNumber) {
                guard names.insert(entry.name).inserted else {
                    throw ParseError(line: lineNumber, reason: "the name '\(entry.name)' is given twice")
                }
                guard digests.insert(entry.digest).inserted else {
                    throw ParseError(line: lineNumber, reason: "this token is given to another name too")
                }
                entries.append(entry)
            }
            start = end + 1
        }
        guard !entries.isEmpty else { throw ParseError(line: 0, reason: "the file names no tokens") }
        return TokenTable(entries: entries)
    }

    /// One line: nil for a blank line or a comment.
    private static func parseLine(_ line: ArraySlice<UInt8>, number: Int) throws(ParseError) -> Entry? {
        var content = line
        if let hash = content.firstIndex(of: UInt8(ascii: "#")) { content = content[..<hash] }
        let fields = content.split(whereSeparator: { $0 == 0x20 || $0 == 0x09 })
        if fields.isEmpty { return nil }
        guard fields.count == 2 else {
            throw ParseError(line: number, reason: "expected 'NAME TOKEN', found \(fields.count) fields")
        }
        let name = fields[0], token = fields[1]
        guard (1...maxNameBytes).contains(name.count), name.allSatisfy(isNameByte) else {
            throw ParseError(line: number, reason: "a name is 1 to \(maxNameBytes) of A-Z a-z 0-9 . _ ~ -")
        }
        guard (minTokenBytes...maxTokenBytes).contains(token.count), isBearerToken(token) else {
            throw ParseError(
                line: number,
                reason: "a token is \(minTokenBytes) to \(maxTokenBytes) characters of A-Z a-z 0-9 - . _ ~ + / with optional trailing '=' (RFC 6750)")
        }
        return Entry(name: String(decoding: name, as: UTF8.self), digest: digest(token))
    }

    private init(entries: [Entry]) {
        self.entries = entries
    }

    // MARK: - Lookup

    /// The principal a presented token stands for. Every entry is compared, in constant time per
    /// entry, whether or not one has matched already.
    /// - Parameter token: The token's bytes as presented.
    /// - Returns: The principal, or nil for an unknown token.
    public func principal(for token: some Collection<UInt8>) -> String? {
        principal(forDigest: Self.digest(token))
    }

    /// The principal whose token has this SHA-256 digest, compared with every entry.
    func principal(forDigest presented: [UInt8]) -> String? {
        var found: String?
        for entry in entries where Self.constantTimeEquals(entry.digest, presented) {
            found = entry.name
        }
        return found
    }

    /// Whether two tables hold the same tokens for the same names (a reload that changes nothing).
    public func sameEntries(as other: TokenTable) -> Bool {
        entries.count == other.entries.count
            && zip(entries, other.entries).allSatisfy { $0.name == $1.name && $0.digest == $1.digest }
    }

    /// Whether a token is in the table, in the same fixed work as `principal(for:)`.
    public func contains(_ token: some Collection<UInt8>) -> Bool { principal(for: token) != nil }

    // MARK: - Helpers

    /// SHA-256 of a token.
    static func digest(_ token: some Collection<UInt8>) -> [UInt8] {
        Array(SHA256.hash(data: Array(token)))
    }

    /// Equal-length digests compared with no early exit.
    static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in a.indices { difference |= a[i] ^ b[i] }
        return difference == 0
    }

    private static func isNameByte(_ b: UInt8) -> Bool {
        isAlphanumeric(b) || b == UInt8(ascii: ".") || b == UInt8(ascii: "_") || b == UInt8(ascii: "~") || b == UInt8(ascii: "-")
    }

    private static func isAlphanumeric(_ b: UInt8) -> Bool {
        (0x30...0x39).contains(b) || (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b)
    }

    /// RFC 6750 §2.1 b64token: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
    static func isBearerToken(_ token: some Collection<UInt8>) -> Bool {
        var seenPadding = false
        var seenBody = false
        for b in token {
            if b == UInt8(ascii: "=") {
                guard seenBody else { return false }
                seenPadding = true
                continue
            }
            guard !seenPadding else { return false }
            guard isAlphanumeric(b) || b == UInt8(ascii: "-") || b == UInt8(ascii: ".") || b == UInt8(ascii: "_")
                || b == UInt8(ascii: "~") || b == UInt8(ascii: "+") || b == UInt8(ascii: "/")
            else { return false }
            seenBody = true
        }
        return seenBody
    }
}
