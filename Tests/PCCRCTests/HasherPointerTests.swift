import Testing

@testable import PCCRC

/// LeakSanitizer (the fuzzers' leak check) finds a live object only through a plain pointer to it.
/// A Swift enum with several single-reference payloads keeps its case in the reference's spare high
/// bits, so a digest context held that way looks leaked while in use (FuzzRouteParameters reported
/// a V2 stream's SHA-512 context). Every heap object a hasher holds inline (through structs, enums
/// and optionals, not behind another object) must be stored as its plain address.
@Suite struct HasherPointerTests {
    /// The objects `value` holds inline, found by reflection.
    static func inlineObjects(_ value: Any) -> [ObjectIdentifier] {
        let mirror = Mirror(reflecting: value)
        switch mirror.displayStyle {
        case .class: return [ObjectIdentifier(value as AnyObject)]
        case .struct, .enum, .optional, .tuple: return mirror.children.flatMap { inlineObjects($0.value) }
        default: return []
        }
    }

    /// The objects `value` holds inline whose plain address is not one of its words.
    static func hiddenObjects<T>(_ value: T) -> [ObjectIdentifier] {
        var copy = value
        let words = withUnsafeBytes(of: &copy) { raw in
            stride(from: 0, to: raw.count - 7, by: 8).map { raw.loadUnaligned(fromByteOffset: $0, as: UInt.self) }
        }
        return inlineObjects(value).filter { !words.contains(UInt(bitPattern: $0)) }
    }

    @Test(arguments: [DigestState.Kind.sha256, .sha384, .sha512])
    func digestStateHoldsItsContextByAPlainPointer(_ kind: DigestState.Kind) {
        var state = DigestState(kind)
        #expect(!Self.inlineObjects(state).isEmpty, "reflection found no digest context: the test sees nothing")
        #expect(Self.hiddenObjects(state).isEmpty, "\(kind)")
        let before = Self.inlineObjects(state)
        Array("some bytes".utf8).withUnsafeBytes { state.update($0) }
        #expect(Self.hiddenObjects(state).isEmpty, "\(kind) after update")
        // Updated in place: the context was uniquely referenced, so it was not copied.
        #expect(Self.inlineObjects(state) == before, "\(kind): update copied the digest context")
    }

    @Test(arguments: [V1HashAlgorithm.sha256, .sha384, .sha512])
    func contentHashersHoldTheirContextsByPlainPointers(_ algorithm: V1HashAlgorithm) {
        for version in [PCCRCVersion.v1, .v2] {
            var hasher = ContentHasher(version: version, algorithm: algorithm)
            #expect(!Self.inlineObjects(hasher).isEmpty)
            #expect(Self.hiddenObjects(hasher).isEmpty, "\(version) \(algorithm)")
            hasher.update(TestSupport.randomBytes(count: 200_000, seed: 5))
            #expect(Self.hiddenObjects(hasher).isEmpty, "\(version) \(algorithm) after 200,000 bytes")
        }
    }
}
