#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CSystemShims

/// The bytes of the entries: a few large pack files, `packs/N`, each entry at a 4 KiB-aligned
/// offset of one of them, appended to the newest pack until it holds `maxPackBytes`. The index
/// (`CacheStore`) holds each entry's pack and offset and decides what is readable; reads verify
/// the bytes anyway.
///
/// Why packs, not a file per block: a GiB of V1 blocks is 16,384 files, and on ext4 every new
/// inode's allocation skips, one by one, each inode freed in the last minute or more
/// (`find_inode_bit` → `recently_deleted`, 30–40 % of an AddData's CPU in perf after a deletion of
/// as many). Appending to a pack creates a file per 64 MiB and writes a window of blocks in one
/// system call per block, with no open, close or rename.
///
/// Space: a removed entry's bytes are freed at once by punching a hole (`fallocate`
/// `PUNCH_HOLE`), and a pack with no entry left is deleted. Where the file system cannot punch
/// holes, a pack's dead bytes stay on disk until its last entry goes (at most `maxPackBytes` a
/// pack beyond the capacity).
///
/// Crash safety: bytes are appended before their rows commit, so a kill -9 leaves at most bytes
/// no row refers to; at the next open, every byte of a pack outside a row's range is punched
/// and packs without rows are deleted (`reclaim`). A pack is appended to only by the process
/// that created it: each open starts a new one.
///
/// Not Sendable: used only on the cache's I/O queue.
struct PackFileStore {
    /// Where an entry's bytes are.
    struct Location: Hashable {
        let pack: Int64
        let offset: Int64
    }

    // MARK: - Properties

    /// A pack takes no more appends once it holds this many bytes.
    static let maxPackBytes: Int64 = 64 << 20
    /// Entries start at multiples of this (the file system's block), so that punching an entry's
    /// range frees exactly its blocks.
    static let alignment: Int64 = 4096
    /// Blocks reserved at a time past the newest pack's end (`fallocate` keeping its size): at
    /// most this much disk is taken beyond the entries' bytes, freed when the pack is full or the
    /// cache closes (after a crash, when the pack is cut at the next open).
    static let reservationStep: Int64 = 16 << 20
    /// Read descriptors kept open at most.
    static let maxOpenPacks = 64

    let root: String
    private let packs: String
    /// The pack being appended to, its descriptor and its end (aligned).
    private var current: (id: Int64, fd: Int32, end: Int64)?
    /// How far the newest pack's blocks are reserved.
    private var reserved: Int64 = 0
    private var nextID: Int64
    private var readers: [Int64: Int32] = [:]

    // MARK: - Init

    /// Creates `root` and its parents if missing.
    static func makeFolder(_ root: String) throws {
        var prefix = ""
        for component in root.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += (prefix.isEmpty && !root.hasPrefix("/") ? "" : "/") + component
            if mkdir(prefix, 0o700) != 0 && errno != EEXIST { throw Self.failure("mkdir \(prefix)") }
        }
    }

    /// Creates `packs/` if missing; the first append starts a pack numbered after every one there.
    init(root: String) throws {
        self.root = root
        packs = root + "/packs"
        try Self.makeFolder(packs)
        nextID = (Self.list(packs).compactMap { Int64($0) }.max() ?? 0) + 1
    }

    // MARK: - API

    /// Appends `bytes` to the newest pack (a new one when it is full or none is open).
    /// - Throws: `StorageError` on any I/O error; the bytes are then nowhere.
    mutating func append(_ bytes: ArraySlice<UInt8>) throws -> Location {
        if let open = current, open.end >= Self.maxPackBytes {
            releaseReservation()
            close(open.fd)
            current = nil
        }
        if current == nil {
            let id = nextID
            nextID += 1
            // A new pack is new: never a file or link someone put in its place.
            let fd = open(path(of: id), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw Self.failure("open pack") }
            current = (id, fd, 0)
            reserved = 0
        }
        guard let (id, fd, end) = current.map({ ($0.id, $0.fd, $0.end) }) else { throw Self.failure("open pack") }
        if end + Int64(bytes.count) > reserved {
            // Reserved ahead, a step at a time: writes into reserved blocks skip most of the file
            // system's per-page allocation work (about 5 % of an AddData's CPU on ext4).
            reserved = end + Self.reservationStep
            _ = peerdist_preallocate(fd, end, Self.reservationStep)
        }
        let ok = bytes.withUnsafeBytes { buffer -> Bool in
            guard let base = buffer.baseAddress else { return false }
            var written = 0
            while written < buffer.count {
                let n = pwrite(fd, base + written, buffer.count - written, off_t(end) + off_t(written))
                if n < 0 { if errno == EINTR { continue }; return false }
                if n == 0 { return false }
                written += n
            }
            return true
        }
        guard ok else { throw Self.failure("write pack \(id)") }
        let length = Int64(bytes.count)
        current = (id, fd, Self.alignedUp(end + length))
        return Location(pack: id, offset: end)
    }

    /// A descriptor of pack `id` of the caller's own (to close), for reads off the I/O queue: it
    /// stays valid, and reads the pack's bytes, even when the pack is removed meanwhile.
    mutating func duplicate(pack id: Int64) -> Int32? {
        guard let fd = reader(id) else { return nil }
        let copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        return copy >= 0 ? copy : nil
    }

    /// Closes descriptors `duplicate` gave.
    static func closeDescriptors(_ descriptors: [Int32]) {
        for fd in descriptors { close(fd) }
    }

    /// Reads up to `count` bytes at `offset` of the open file `fd` into `destination`; returns how
    /// many it read (fewer at the file's end or on an error).
    static func read(_ fd: Int32, at offset: Int64, count: Int, into destination: UnsafeMutablePointer<UInt8>) -> Int {
        var done = 0
        while done < count {
            let n = pread(fd, destination + done, count - done, off_t(offset) + off_t(done))
            if n < 0 { if errno == EINTR { continue }; break }
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// Frees the bytes of an entry no row refers to any more (a hole punched in its pack).
    mutating func release(_ location: Location, length: Int64) {
        guard let fd = reader(location.pack) else { return }
        punch(fd, from: location.offset, length: length)
    }

    /// Deletes pack `id` (its last entry went), unless it is the one being appended to.
    mutating func remove(pack id: Int64) {
        guard current?.id != id else { return }
        if let fd = readers.removeValue(forKey: id) { close(fd) }
        unlink(path(of: id))
    }

    /// Every pack's id.
    func allPacks() -> [Int64] {
        Self.list(packs).compactMap { Int64($0) }
    }

    /// New packs are numbered after `id` too (the highest an index row names, whose file may be
    /// gone), so that no row ever points into a pack it was not written to.
    mutating func numberAfter(_ id: Int64) {
        nextID = max(nextID, id + 1)
    }

    /// After a crash: deletes `id` when `live` is empty, else punches every byte outside the
    /// ranges of `live` (sorted by offset) and cuts the pack after the last.
    mutating func reclaim(pack id: Int64, live: [(offset: Int64, length: Int64)]) {
        guard let last = live.last else {
            remove(pack: id)
            return
        }
        guard let fd = reader(id) else { return }
        var position: Int64 = 0
        for range in live {
            if range.offset > position { punch(fd, from: position, length: range.offset - position) }
            position = max(position, range.offset + range.length)
        }
        _ = ftruncate(fd, off_t(last.offset + last.length))
    }

    /// Closes every descriptor.
    mutating func closeAll() {
        releaseReservation()
        if let open = current { close(open.fd) }
        current = nil
        for fd in readers.values { close(fd) }
        readers = [:]
    }

    /// The path of pack `id`.
    func path(of id: Int64) -> String {
        packs + "/\(id)"
    }

    // MARK: - Private

    /// Frees the blocks reserved past the newest pack's end.
    private func releaseReservation() {
        guard let open = current, reserved > open.end else { return }
        punch(open.fd, from: open.end, length: reserved - open.end)
    }

    private mutating func reader(_ id: Int64) -> Int32? {
        if let open = current, open.id == id { return open.fd }
        if let fd = readers[id] { return fd }
        let fd = open(path(of: id), O_RDWR | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        if readers.count >= Self.maxOpenPacks, let victim = readers.first {
            close(victim.value)
            readers.removeValue(forKey: victim.key)
        }
        readers[id] = fd
        return fd
    }

    /// Punches `[from, from + length)` with both ends rounded up to the alignment: an entry
    /// starts aligned and owns the padding after it, and a gap between entries starts at the
    /// padded end of one and ends at the aligned start of the next.
    private func punch(_ fd: Int32, from: Int64, length: Int64) {
        let start = Self.alignedUp(from)
        let upper = Self.alignedUp(from + length)
        guard upper > start else { return }
        _ = peerdist_punch_hole(fd, start, upper - start)
    }

    private static func alignedUp(_ offset: Int64) -> Int64 {
        (offset + alignment - 1) / alignment * alignment
    }

    /// Deletes `path` and everything under it (no error if it is gone).
    static func removeTree(_ path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            for name in list(path) { removeTree(path + "/" + name) }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    private static func list(_ dir: String) -> [String] {
        guard let handle = opendir(dir) else { return [] }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    private static func failure(_ what: String) -> StorageError {
        StorageError(code: errno, message: "\(what): \(String(cString: strerror(errno)))")
    }
}
