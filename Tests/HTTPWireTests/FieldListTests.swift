import HTTPWire
import Testing

@Suite struct FieldListTests {
    @Test func elementsParametersAndQuotedStrings() {
        let elements = FieldList.parse(#"gzip;q=0.5 , , BR ; Q=1, application/json; charset="utf-8\"x", wait=5;foo"#)
        #expect(elements == [
            FieldListElement(item: "gzip", parameters: [("q", "0.5")]),
            FieldListElement(item: "br", parameters: [("q", "1")]),
            FieldListElement(item: "application/json", parameters: [("charset", #"utf-8"x"#)]),
            FieldListElement(item: "wait", value: "5", parameters: [("foo", nil)]),
        ])
        #expect(FieldList.parse("") == [])
        #expect(FieldList.parse(" ,, ") == [])
        #expect(FieldList.parse("a;") == [FieldListElement(item: "a")])
    }

    /// Malformed values give nil, never a trap: the inputs that crashed the server, and more.
    @Test(arguments: [";", ";;", "gzip,;", " ; ", "=", "a=", "a b", "a;=1", #"a;b="x"#, "a,\u{1}", "a;b=\"\\\u{7f}\"", "\u{ff}"])
    func malformedIsNil(_ value: String) {
        #expect(FieldList.parse(value) == nil)
    }

    @Test func qvalues() {
        #expect(FieldList.qvalue("1") == 1000)
        #expect(FieldList.qvalue("1.000") == 1000)
        #expect(FieldList.qvalue("0.5") == 500)
        #expect(FieldList.qvalue("0.001") == 1)
        #expect(FieldList.qvalue("0") == 0)
        for bad in ["1.001", "2", "0.0001", "-0", ".5", "", "1e0", "0.5x"] {
            #expect(FieldList.qvalue(bad) == nil, "\(bad)")
        }
        #expect(FieldList.qvalue("0.") == 0)
    }

    @Test func hostSyntax() {
        for good in ["t", "example.com:8080", "127.0.0.1", "[::1]:80", "[v1.x]", "", "a%20b", "h:"] {
            #expect(HostSyntax.isValid(good), "\(good)")
        }
        for bad in ["bad host/x", "a/b", "[::1", "[::1]x", "h:123456", "h:8a", "a%2", "ü", "a@b"] {
            #expect(!HostSyntax.isValid(bad), "\(bad)")
        }
    }
}
