import PeerDistAPI
import Testing

/// The tokens file parser: what it accepts, what it refuses and where, and lookups.
@Suite struct TokenTableTests {
    static func parse(_ text: String) throws(TokenTable.ParseError) -> TokenTable {
        try TokenTable.parse(Array(text.utf8))
    }

    @Test func acceptsPairsCommentsBlankLinesAndCRLF() throws {
        let table = try Self.parse("""
            # harness principals
            alice   alice-token-0123456789   # trailing comment
            \tbob\tYm9iLXRva2VuLTAxMjM0NTY3OA==\r

            carol.x_~- carol/token+0123456789
            """)
        #expect(table.names == ["alice", "bob", "carol.x_~-"])
        #expect(table.principal(for: Array("alice-token-0123456789".utf8)) == "alice")
        #expect(table.principal(for: Array("Ym9iLXRva2VuLTAxMjM0NTY3OA==".utf8)) == "bob")
        #expect(table.principal(for: Array("carol/token+0123456789".utf8)) == "carol.x_~-")
        #expect(table.principal(for: Array("alice-token-012345678".utf8)) == nil)
        #expect(table.principal(for: Array("alice-token-01234567890".utf8)) == nil)
        #expect(table.principal(for: [UInt8]()) == nil)
    }

    @Test(arguments: [
        ("alice\n", 1, "expected 'NAME TOKEN'"),
        ("alice tok en-0123456789abcdef\n", 1, "expected 'NAME TOKEN'"),
        ("# ok\nal!ce alice-token-0123456789\n", 2, "a name is"),
        ("alice short\n", 1, "a token is"),
        ("alice alice-token-01234\"6789\n", 1, "a token is"),
        ("alice ==alice-token-0123456789\n", 1, "a token is"),
        ("alice alice-token=-0123456789\n", 1, "a token is"),
        ("alice alice-token-0123456789\nalice other-token-0123456789\n", 2, "given twice"),
        ("alice alice-token-0123456789\nbob alice-token-0123456789\n", 2, "another name"),
        ("# nothing\n\n", 0, "no tokens"),
        ("", 0, "no tokens"),
    ])
    func refusesWithTheLineAndTheReason(text: String, line: Int, fragment: String) {
        #expect {
            try Self.parse(text)
        } throws: { error in
            guard let error = error as? TokenTable.ParseError else { return false }
            return error.line == line && error.reason.contains(fragment)
        }
    }

    @Test func boundsAreEnforced() {
        let longName = String(repeating: "n", count: TokenTable.maxNameBytes + 1) + " token-0123456789abcdef\n"
        #expect(throws: TokenTable.ParseError.self) { try Self.parse(longName) }
        let longToken = "alice " + String(repeating: "t", count: TokenTable.maxTokenBytes + 1) + "\n"
        #expect(throws: TokenTable.ParseError.self) { try Self.parse(longToken) }
        let longLine = "alice alice-token-0123456789 #" + String(repeating: "c", count: TokenTable.maxLineBytes) + "\n"
        #expect(throws: TokenTable.ParseError(line: 1, reason: "longer than \(TokenTable.maxLineBytes) bytes")) { try Self.parse(longLine) }
        let manyLines = "alice alice-token-0123456789\n" + String(repeating: "\n", count: TokenTable.maxLines)
        #expect(throws: TokenTable.ParseError(line: 0, reason: "the file has more than \(TokenTable.maxLines) lines")) { try Self.parse(manyLines) }
        #expect(throws: TokenTable.ParseError.self) { try TokenTable.parse(Array(repeating: 0x23, count: TokenTable.maxFileBytes + 1)) }
        // The largest table the bounds allow still parses.
        let big = (0..<TokenTable.maxLines).map { "p\($0) token-\($0)-0123456789abcdef" }.joined(separator: "\n")
        #expect((try? Self.parse(big))?.count == TokenTable.maxLines)
    }

    /// The error names the line and never echoes a token.
    @Test func errorsNeverCarryTheToken() {
        do {
            _ = try Self.parse("alice alice-secret-0123456789\nbob alice-secret-0123456789\n")
            Issue.record("accepted a duplicate token")
        } catch {
            #expect(!error.description.contains("alice-secret"))
        }
    }
}
