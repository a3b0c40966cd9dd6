/// An open content-information reader (`PEERDIST_CONTENTINFO_HANDLE`). Confined to the engine lock.
final class ContentInfoRecord {
    let handle: String
    let contentId: [UInt8]
    let principal: String
    /// The version chosen from the caller's range.
    let version: Int
    let portName: String
    let key: UInt64
    /// The publication it reads (a later re-publication is another one).
    let publicationSerial: UInt64
    /// The encoded content information of the requested range.
    let blob: [UInt8]
    /// Read position in `blob`.
    var position = 0
    var invalidated = false

    init(
        handle: String, contentId: [UInt8], principal: String, version: Int, portName: String, key: UInt64,
        publicationSerial: UInt64, blob: [UInt8]
    ) {
        self.handle = handle
        self.contentId = contentId
        self.principal = principal
        self.version = version
        self.portName = portName
        self.key = key
        self.publicationSerial = publicationSerial
        self.blob = blob
    }
}
