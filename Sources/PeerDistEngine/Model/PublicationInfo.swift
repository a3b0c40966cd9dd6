import Foundation

/// Metadata of a publication (`GET /instances/{h}/content/{id}`).
public struct PublicationInfo: Sendable, Hashable {
    /// The content identifier's bytes.
    public let contentId: [UInt8]
    /// The content length in bytes.
    public let length: UInt64
    /// Content information versions available: `[1]` or `[1, 2]`.
    public let versions: [Int]
    /// When the publication became visible.
    public let publishedAt: Date
}
