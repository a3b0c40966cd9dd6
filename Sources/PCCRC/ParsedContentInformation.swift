/// Content information of either version, as returned by `ContentInformation.parse(_:)`.
public enum ParsedContentInformation: Sendable, Equatable {
    /// Version 1.0.
    case v1(ContentInformationV1)
    /// Version 2.0.
    case v2(ContentInformationV2)

    /// The version of the parsed structure.
    public var version: PCCRCVersion {
        switch self {
        case .v1: .v1
        case .v2: .v2
        }
    }

    /// The content range the structure describes.
    public var contentRange: Range<UInt64> {
        switch self {
        case .v1(let info): info.contentRange
        case .v2(let info): info.contentRange
        }
    }

    /// The byte-exact serialization of the wrapped structure.
    /// - Returns: The MS-PCCRC bytes.
    public func serialize() -> [UInt8] {
        switch self {
        case .v1(let info): info.serialize()
        case .v2(let info): info.serialize()
        }
    }
}
