import PeerDistAPI

/// FuzzTokenTable: the tokens file parser on any bytes. It must return a table or throw, never
/// trap, within its bounds.
///
/// Checks on every input: a table holds 1 to `maxLines` principals with distinct names of at most
/// `maxNameBytes`; each name's own token (re-read from the input's lines) looks up to that name;
/// a table parsed again from its input is the same; an error names a line within the input's
/// line count, and never contains a token the input gave.
public enum TokenTableFuzzer {
    public static func run(_ buffer: UnsafeRawBufferPointer) {
        let bytes = Array(buffer)
        let lineCount = bytes.split(separator: 0x0A, omittingEmptySubsequences: false).count
        do {
            let table = try TokenTable.parse(bytes)
            precondition((1...TokenTable.maxLines).contains(table.count), "table size out of bounds")
            precondition(Set(table.names).count == table.names.count, "a name twice")
            precondition(table.names.allSatisfy { (1...TokenTable.maxNameBytes).contains($0.utf8.count) }, "name length out of bounds")
            for (name, token) in pairs(bytes) {
                precondition(table.principal(for: token).map { Array($0.utf8) } == name, "a token does not look up to its own name")
            }
            let again = try TokenTable.parse(bytes)
            precondition(again.sameEntries(as: table), "parsing is not deterministic")
        } catch {
            precondition(error.line >= 0 && error.line <= lineCount, "error line out of range")
            // A name is echoed (a name given twice), so a token that is also part of a name may be.
            // Compared as bytes: Foundation's String.contains traps on some strings decoded from
            // invalid UTF-8 (found by this target; see its Regressions/).
            let all = pairs(bytes)
            let description = Array(error.description.utf8)
            for (_, token) in all where token.count >= TokenTable.minTokenBytes {
                guard !all.contains(where: { contains($0.0, token) }) else { continue }
                precondition(!contains(description, token), "an error echoes a token")
            }
        }
    }

    /// Whether `needle` occurs in `haystack`, byte for byte.
    private static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, haystack.count >= needle.count else { return needle.isEmpty }
        for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
            if haystack[start..<(start + needle.count)].elementsEqual(needle) { return true }
        }
        return false
    }

    /// The two fields of each line that has exactly two, before any `#`.
    private static func pairs(_ bytes: [UInt8]) -> [([UInt8], [UInt8])] {
        bytes.split(separator: 0x0A, omittingEmptySubsequences: false).compactMap { line in
            var content = line
            if content.last == 0x0D { content = content.dropLast() }
            if let hash = content.firstIndex(of: 0x23) { content = content[..<hash] }
            let fields = content.split(whereSeparator: { $0 == 0x20 || $0 == 0x09 })
            guard fields.count == 2 else { return nil }
            return (Array(fields[0]), Array(fields[1]))
        }
    }
}
