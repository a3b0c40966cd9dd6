/// One version 2.0 `SegmentDescription` (MS-PCCRC §2.4.1.1): 68 bytes, big-endian.
public struct SegmentDescriptionV2: Sendable, Equatable {
    /// `cbSegment`: 1 to 131,072.
    public var segmentLength: UInt32
    /// `SegmentHashOfData` (HoD): `SHA-512(segment)[0..<32]`.
    public var hashOfData: [UInt8]
    /// `SegmentSecret` (Kp): `HMAC-SHA-512(Ks, HoD)[0..<32]`.
    public var segmentSecret: [UInt8]

    /// Serialized size of one description.
    public static let serializedSize = 68

    /// Creates a segment description.
    /// - Parameters:
    ///   - segmentLength: `cbSegment`.
    ///   - hashOfData: HoD (32 bytes).
    ///   - segmentSecret: Kp (32 bytes).
    public init(segmentLength: UInt32, hashOfData: [UInt8], segmentSecret: [UInt8]) {
        self.segmentLength = segmentLength
        self.hashOfData = hashOfData
        self.segmentSecret = segmentSecret
    }
}
