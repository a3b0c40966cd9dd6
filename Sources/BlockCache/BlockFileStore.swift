#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The content-addressed block files: `blocks/XX/C-HEX`, where C is the hash function's storage
/// code and HEX the digest, XX its first byte. A file is written outside `blocks/` and renamed
/// into place, so a name in `blocks/` always holds a whole write (a kill -9 leaves at most a file
/// in `tmp/` or `spare/`, neither of which is ever read). The index decides what is readable;
/// reads verify the bytes anyway.
///
/// Files are recycled rather than deleted: a removed block file is renamed into `spare/` (up to
/// `maxSpareFiles`), and the next write overwrites a spare in place and renames it into `blocks/`.
/// On ext4 without a journal, creating a file costs an inode allocation whose search skips, one
/// by one, every inode freed in the last minute or more (`find_inode_bit` → `recently_deleted`):
/// writing 16,384 new 64 KiB files just after deleting as many spent 95 % of its time there
/// (perf) and ran at 150–350 MiB/s, against about 2,200 MiB/s rewriting existing files. A full
/// cache frees one file for each it writes, so reusing the inode skips both the free and the
/// allocation. Spares hold stale bytes of evicted blocks, at most `maxSpareFiles` × 128 KiB on
/// disk beyond the capacity; they are kept across restarts and never read.
///
/// Not Sendable: used only on the cache's I/O queue.
struct BlockFileStore {
    // MARK: - Properties

    /// Spare files kept for reuse at most (64 MiB of 64 KiB blocks).
    static let maxSpareFiles = 1024

    let root: String
    private let blocks: String
    private let tmp: String
    private let spare: String
    private var tmpCounter: UInt64 = 0
    /// Names in `spare/`, each a decimal number below `spareCounter`.
    private var spares: [String] = []
    private var spareCounter: UInt64 = 0

    // MARK: - Init

    /// Creates `root` and its parents if missing.
    static func makeFolder(_ root: String) throws {
        var prefix = ""
        for component in root.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += (prefix.isEmpty && !root.hasPrefix("/") ? "" : "/") + component
            if mkdir(prefix, 0o700) != 0 && errno != EEXIST { throw Self.failure("mkdir \(prefix)") }
        }
    }

    /// Creates the folders if missing, takes stock of `spare/`, and empties `tmp/` into it.
    init(root: String) throws {
        self.root = root
        blocks = root + "/blocks"
        tmp = root + "/tmp"
        spare = root + "/spare"
        try Self.makeFolder(root)
        // Every shard too, once, so that a write never needs a mkdir.
        let shards = (0..<256).map { blocks + "/" + Hex.encode([UInt8($0)]) }
        for dir in [blocks, tmp, spare] + shards {
            if mkdir(dir, 0o700) != 0 && errno != EEXIST { throw Self.failure("mkdir \(dir)") }
        }
        for name in Self.list(spare) {
            guard let number = UInt64(name), spares.count < Self.maxSpareFiles else {
                unlink(spare + "/" + name)
                continue
            }
            spares.append(name)
            spareCounter = max(spareCounter, number)
        }
        // Half-written files of a crash: their bytes are stale, their inodes still good.
        for name in Self.list(tmp) { discard(tmp + "/" + name) }
    }

    // MARK: - API

    /// The file name of a digest.
    static func name(code: Int64, digest: [UInt8]) -> String {
        "\(code)-" + Hex.encode(digest)
    }

    /// Writes `bytes` as the file `name` unless it exists: into a spare file when there is one
    /// (overwritten in place, cut to length), else a new file in `tmp/`, then renamed into
    /// `blocks/`. Throws on any I/O error, leaving nothing under `name`.
    mutating func write(name: String, bytes: [UInt8]) throws {
        let final = path(of: name)
        var info = stat()
        if stat(final, &info) == 0, Int(info.st_size) == bytes.count { return }
        var source = ""
        var fd: Int32 = -1
        var recycled = false
        while fd < 0, let spareName = spares.popLast() {
            source = spare + "/" + spareName
            fd = open(source, O_WRONLY | O_CLOEXEC)
            recycled = fd >= 0
        }
        if fd < 0 {
            tmpCounter &+= 1
            source = tmp + "/\(getpid())-\(tmpCounter)"
            fd = open(source, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        }
        guard fd >= 0 else { throw Self.failure("open") }
        var written = 0
        var ok = bytes.withUnsafeBytes { buffer -> Bool in
            guard let base = buffer.baseAddress else { return false }
            while written < buffer.count {
                let n = pwrite(fd, base + written, buffer.count - written, off_t(written))
                if n < 0 { if errno == EINTR { continue }; return false }
                if n == 0 { return false }
                written += n
            }
            return true
        }
        // A spare that held a longer block keeps its tail until cut.
        if ok, recycled, fstat(fd, &info) != 0 || Int(info.st_size) != bytes.count {
            ok = ftruncate(fd, off_t(bytes.count)) == 0
        }
        close(fd)
        if ok, rename(source, final) != 0 {
            // The shard went missing under us: make it again, once.
            ok = errno == ENOENT && mkdir(shard(of: name), 0o700) == 0 && rename(source, final) == 0
        }
        guard ok else {
            unlink(source)
            throw Self.failure("write")
        }
    }

    /// The bytes of file `name` if it exists and holds exactly `expectedLength` bytes.
    func read(name: String, expectedLength: Int) -> [UInt8]? {
        let fd = open(path(of: name), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, Int(info.st_size) == expectedLength, expectedLength > 0 else { return nil }
        var bytes = [UInt8](repeating: 0, count: expectedLength)
        var done = 0
        let ok = bytes.withUnsafeMutableBytes { buffer -> Bool in
            guard let base = buffer.baseAddress else { return false }
            while done < buffer.count {
                let n = Glibc.read(fd, base + done, buffer.count - done)
                if n < 0 { if errno == EINTR { continue }; return false }
                if n == 0 { return false }
                done += n
            }
            return true
        }
        return ok ? bytes : nil
    }

    /// Removes file `name` from `blocks/` (no error if it is gone), keeping it as a spare while
    /// there is room.
    mutating func remove(name: String) {
        discard(path(of: name))
    }

    /// Every file name under `blocks/`.
    func allNames() -> [String] {
        Self.list(blocks).flatMap { shard in Self.list(blocks + "/" + shard) }
    }

    /// The path of file `name`.
    func path(of name: String) -> String {
        shard(of: name) + "/" + name
    }

    /// The folder of file `name`: `blocks/` and the digest's first byte in hex.
    private func shard(of name: String) -> String {
        let digestHex = name.split(separator: "-", maxSplits: 1).last.map(String.init) ?? name
        return blocks + "/" + String(digestHex.prefix(2))
    }

    // MARK: - Private

    /// Moves the file at `path` into `spare/`, or unlinks it when the spares are full.
    private mutating func discard(_ path: String) {
        if spares.count < Self.maxSpareFiles {
            spareCounter &+= 1
            let name = String(spareCounter)
            if rename(path, spare + "/" + name) == 0 {
                spares.append(name)
                return
            }
            if errno == ENOENT { return }
        }
        unlink(path)
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
