import Base64URL
import Testing

/// The one base64url codec: round trips, RFC 4648 vectors, and refusal of what is not canonical.
@Suite struct Base64URLTests {
    @Test func roundTripsEveryLengthAndByte() {
        for count in 0..<70 {
            let bytes = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 251) }
            let text = Base64URL.encode(bytes)
            #expect(!text.contains("=") && !text.contains("+") && !text.contains("/"))
            #expect(Base64URL.decode(text) == bytes)
        }
        let all = (0...255).map { UInt8($0) }
        #expect(Base64URL.decode(Base64URL.encode(all)) == all)
    }

    @Test func rfc4648Vectors() {
        let vectors = ["": "", "f": "Zg", "fo": "Zm8", "foo": "Zm9v", "foob": "Zm9vYg", "fooba": "Zm9vYmE", "foobar": "Zm9vYmFy"]
        for (plain, encoded) in vectors {
            #expect(Base64URL.encode(Array(plain.utf8)) == encoded)
            #expect(Base64URL.decode(encoded) == Array(plain.utf8))
        }
        #expect(Base64URL.encode([0xFB, 0xFF]) == "-_8")
    }

    @Test func refusesWhatIsNotCanonical() {
        // "Zh" and "Zm9" carry set bits past the last byte ("Zg" and "Zm8" are canonical).
        for bad in ["Z", "Zh", "Zm9", "Zm+v", "Zm/v", "Zm9v\n", "Zg==", "Zm 9", "é"] {
            #expect(Base64URL.decode(bad) == nil, "\(bad)")
        }
        #expect(Base64URL.decode("Zm8=") == nil)
        #expect(Base64URL.decode("Zm8=", allowingPadding: true) == Array("fo".utf8))
        #expect(Base64URL.decode("Zg==", allowingPadding: true) == Array("f".utf8))
        #expect(Base64URL.decode("Zg===", allowingPadding: true) == nil)
    }
}
