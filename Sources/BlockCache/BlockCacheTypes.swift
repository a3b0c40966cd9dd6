public import PCCRC

/// The hash an entry is verified with: a V1 block hash (SHA-256/384/512 by `dwHashAlgo`) or the
/// V2 segment hash of data (SHA-512 truncated to 32 bytes). MS-PCCRC §2.2 (PEERDIST.md §5.2).
public enum BlockHashFunction: Sendable, Hashable {
    /// A V1 block, checked against its block hash `H(block)`.
    case v1(V1HashAlgorithm)
    /// A whole V2 segment, checked against its HoD, the first 32 bytes of SHA-512.
    case v2

    /// Digest length in bytes (32, 48 or 64 for V1; 32 for V2).
    public var digestSize: Int {
        switch self {
        case .v1(let algorithm): algorithm.digestSize
        case .v2: 32
        }
    }

    /// Largest entry this function covers: a V1 block (64 KiB) or a V2 segment (128 KiB).
    public var maximumEntryLength: Int {
        switch self {
        case .v1: Int(ContentInformationV1.blockSize)
        case .v2: Int(ContentInformationV2.maximumSegmentLength)
        }
    }

    /// The code stored in the index (never reordered: it is on disk).
    var storageCode: Int64 {
        switch self {
        case .v1(.sha256): 1
        case .v1(.sha384): 2
        case .v1(.sha512): 3
        case .v2: 4
        }
    }

    init?(storageCode: Int64) {
        switch storageCode {
        case 1: self = .v1(.sha256)
        case 2: self = .v1(.sha384)
        case 3: self = .v1(.sha512)
        case 4: self = .v2
        default: return nil
        }
    }
}

/// An expected digest: what the caller's content information says the entry's bytes hash to.
public struct BlockDigest: Sendable, Hashable {
    /// The function.
    public let function: BlockHashFunction
    /// The digest bytes, `function.digestSize` of them.
    public let bytes: [UInt8]

    /// Fails when `bytes` is not `function.digestSize` long.
    public init?(_ function: BlockHashFunction, _ bytes: [UInt8]) {
        guard bytes.count == function.digestSize else { return nil }
        self.function = function
        self.bytes = bytes
    }
}

/// A segment's identity, its HoHoDk (MS-PCCRC §2.2): 32 bytes (V2, V1 SHA-256), 48 or 64 (V1
/// SHA-384/512). Identical segments in different content share it, so they share cache entries.
public struct SegmentID: Sendable, Hashable {
    /// The HoHoDk bytes.
    public let bytes: [UInt8]

    /// Fails unless `bytes` is 32, 48 or 64 long.
    public init?(_ bytes: [UInt8]) {
        guard [32, 48, 64].contains(bytes.count) else { return nil }
        self.bytes = bytes
    }
}

/// What an entry is keyed by: its segment and, for V1, the block index in that segment (V2
/// segments have no blocks: their one entry is index 0).
public struct BlockKey: Sendable, Hashable {
    /// The segment's HoHoDk.
    public let segment: SegmentID
    /// The block index inside the segment (0 for a V2 segment).
    public let index: UInt32

    public init(segment: SegmentID, index: UInt32) {
        self.segment = segment
        self.index = index
    }
}

/// A client content tag (`PEERDIST_CONTENT_TAG`, 16 bytes): a label for `flush(tag:)`, unrelated
/// to the segment ID (PEERDIST.md §5.7).
public struct ContentTag: Sendable, Hashable {
    /// The 16 tag bytes.
    public let bytes: [UInt8]

    /// Fails unless `bytes` is 16 long.
    public init?(_ bytes: [UInt8]) {
        guard bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    /// Parses the text form: 32 hexadecimal digits, either case. Nil for anything else.
    public init?(hex text: String) {
        let digits = Array(text.utf8)
        guard digits.count == 32 else { return nil }
        var bytes = [UInt8]()
        bytes.reserveCapacity(16)
        for pair in stride(from: 0, to: 32, by: 2) {
            guard let high = Hex.value(digits[pair]), let low = Hex.value(digits[pair + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        self.bytes = bytes
    }

    /// The text form: 32 lowercase hexadecimal digits.
    public var hex: String { Hex.encode(bytes) }
}

/// Lowercase hexadecimal, the one codec of the cache's text forms (content tags, file names).
enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// A digit's value, either case; nil for anything else.
    static func value(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x41...0x46: c - 0x41 + 10
        case 0x61...0x66: c - 0x61 + 10
        default: nil
        }
    }
}

/// Why the cache refused an insert or a staged piece. Nothing refused is ever readable.
public enum BlockCacheRefusal: Sendable, Hashable {
    /// The bytes do not hash to the expected digest (counted in `rejectedOnEntry`).
    case digestMismatch
    /// The piece would leave its staged entry in more than `BlockCache.maxStagedRuns` disjoint
    /// runs; nothing was staged.
    case tooFragmented
    /// Empty, longer than the function allows, or a piece outside the entry's length.
    case invalidLength
    /// The entry alone is larger than the cache's capacity (or the staging area's).
    case largerThanCapacity
    /// A disk or database error; the entry was not stored.
    case storageFailure
    /// The cache was closed.
    case closed
}

/// The result of `insert`.
public enum InsertOutcome: Sendable, Hashable {
    /// Verified and stored; readable from now on.
    case stored
    /// The entry was already cached (same key, digest and length); the caller now holds it too,
    /// under the tag (if any).
    case alreadyPresent
    /// Refused; nothing was stored.
    case refused(BlockCacheRefusal)
}

/// The result of `stage`.
public enum StageOutcome: Sendable, Hashable {
    /// Kept, unverified and unreadable; `coveredBytes` of the entry's length are now staged.
    case staged(coveredBytes: Int)
    /// This piece completed the entry, which was verified and stored; readable from now on.
    case stored
    /// The entry was already cached (same key, digest and length); the caller now holds it too,
    /// under the tag (if any).
    case alreadyPresent
    /// Refused. With `.digestMismatch` the completed entry failed verification and every staged
    /// piece of it was dropped.
    case refused(BlockCacheRefusal)
}

/// One entry of a batch insert. Its bytes may be a slice of a larger buffer (an AddData window),
/// so that cutting a window into entries copies nothing.
public struct BlockInsertion: Sendable {
    public let key: BlockKey
    public let digest: BlockDigest
    public let bytes: ArraySlice<UInt8>
    public let tag: ContentTag?

    public init(key: BlockKey, digest: BlockDigest, bytes: ArraySlice<UInt8>, tag: ContentTag?) {
        self.key = key
        self.digest = digest
        self.bytes = bytes
        self.tag = tag
    }

    public init(key: BlockKey, digest: BlockDigest, bytes: [UInt8], tag: ContentTag?) {
        self.init(key: key, digest: digest, bytes: bytes[...], tag: tag)
    }
}

/// Counters and gauges of one cache, read without touching the disk.
public struct BlockCacheStatistics: Sendable, Hashable {
    /// Bytes of readable entries (an entry's length, counted once per key).
    public var bytes: Int64 = 0
    /// Readable entries.
    public var entries: Int64 = 0
    /// Bytes held unverified in the staging area.
    public var stagedBytes: Int64 = 0
    /// Reads answered with verified bytes.
    public var hits: Int64 = 0
    /// Reads of a key not cached (including those dropped as corrupt).
    public var misses: Int64 = 0
    /// Inserts and completed staged entries whose bytes failed their digest.
    public var rejectedOnEntry: Int64 = 0
    /// Entries whose bytes changed (or vanished) on disk, found on read and dropped.
    public var corruptOnRead: Int64 = 0
    /// Entries evicted to stay within the capacity.
    public var evictions: Int64 = 0
    /// Staged entries dropped to stay within the staging capacity.
    public var stagingEvictions: Int64 = 0

    /// Verification failures of either kind (on entry and on read).
    public var verificationFailures: Int64 { rejectedOnEntry + corruptOnRead }

    public init() {}
}

/// What one principal is charged in a cache.
public struct PrincipalCacheUsage: Sendable, Hashable {
    /// The lengths of the readable entries it holds (an entry held by several principals is
    /// charged to each).
    public var heldBytes: Int64 = 0
    /// Its staged bytes, with each run's row overhead, as the staging bound counts them.
    public var stagingBytes: Int64 = 0

    public init(heldBytes: Int64 = 0, stagingBytes: Int64 = 0) {
        self.heldBytes = heldBytes
        self.stagingBytes = stagingBytes
    }
}

/// Where and how large a cache is.
public struct BlockCacheConfiguration: Sendable {
    /// The data directory; created if missing. The cache owns everything in it.
    public var directory: String
    /// Bound on `BlockCacheStatistics.bytes`; least recently used entries are evicted past it.
    /// The folder holds more: the index, each entry's padding to 4 KiB, and up to 16 MiB
    /// reserved past the newest pack's end (where the file system cannot punch holes, also the
    /// bytes of removed entries until their pack empties).
    public var capacityBytes: Int64
    /// Bound on unverified staged bytes, each run of pieces counted with
    /// `BlockCache.stagedRunOverhead` bytes for its row; past it staged entries are dropped, first
    /// the oldest of the principals above an equal share of it, then the oldest.
    public var stagingCapacityBytes: Int64
    /// The bytes a principal may hold before its entries are the first evicted (`--cache-share`);
    /// nil: `capacityBytes` divided among the principals that hold entries. Past the capacity,
    /// the least recently used entries of the principal furthest above its share go first; when
    /// none is above, the least recently used entries.
    public var sharePerPrincipalBytes: Int64?

    /// Default staging bound: 64 MiB.
    public static let defaultStagingCapacityBytes: Int64 = 64 << 20

    public init(
        directory: String, capacityBytes: Int64, stagingCapacityBytes: Int64 = defaultStagingCapacityBytes,
        sharePerPrincipalBytes: Int64? = nil
    ) {
        self.directory = directory
        self.capacityBytes = capacityBytes
        self.stagingCapacityBytes = stagingCapacityBytes
        self.sharePerPrincipalBytes = sharePerPrincipalBytes
    }
}

/// Why `BlockCache.open` failed.
public struct BlockCacheOpenError: Error, CustomStringConvertible {
    public let description: String
}
