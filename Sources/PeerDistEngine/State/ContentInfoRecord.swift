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
    /// The encoded content information of the requested range (shared: `EngineState.sharedContentInfo`).
    let blob: [UInt8]
    /// Where the blob is registered.
    let blobKey: SharedContentInfoKey
    /// Read position in `blob`.
    var position = 0
    var invalidated = false

    init(
        handle: String, contentId: [UInt8], principal: String, version: Int, portName: String, key: UInt64,
        publicationSerial: UInt64, blob: [UInt8], blobKey: SharedContentInfoKey
    ) {
        self.blobKey = blobKey
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

/// One encoded content information: a publication's (by its serial, which also tells its
/// principal's) in one version over one range.
struct SharedContentInfoKey: Hashable {
    let principal: String
    let publicationSerial: UInt64
    let version: Int
    let offset: UInt64
    let length: UInt64
}

/// An encoded content information and how many content-information handles read it: one copy
/// however many handles there are, counted once in its principal's memory.
struct SharedContentInfo {
    let bytes: [UInt8]
    var handles: Int
}
