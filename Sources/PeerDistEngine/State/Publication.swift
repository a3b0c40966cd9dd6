import Foundation

/// Publications are keyed by principal and content identifier: two principals publishing the same
/// identifier make two publications.
struct PublicationKey: Hashable {
    let principal: String
    let contentId: [UInt8]
}

/// A published content: its digests (never its bytes).
struct Publication {
    let serial: UInt64
    let contentId: [UInt8]
    let principal: String
    /// The instance whose stream published it (its shutdown removes it).
    let ownerInstance: String
    let hashes: PublishedHashes
    let publishedAt: Date

    var info: PublicationInfo {
        PublicationInfo(contentId: contentId, length: hashes.length, versions: hashes.versions, publishedAt: publishedAt)
    }
}
