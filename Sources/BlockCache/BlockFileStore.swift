#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The content-addressed block files: `blocks/XX/C-HEX`, where C is the hash function's storage
/// code and HEX the digest, XX its first byte. A file is written under `tmp/` and renamed into
/// place, so a name in `blocks/` always holds a whole write (a kill -9 leaves at most a file in
/// `tmp/`, emptied at open). The index decides what is readable; reads verify the bytes anyway.
///
/// Not Sendable: used only on the cache's I/O queue.
struct BlockFileStore {
    // MARK: - Properties

    let root: String
    private var blocks: String { root + "/blocks" }
    private var tmp: String { root + "/tmp" }
    private var tmpCounter: UInt64 = 0

    // MARK: - Init

    /// Creates the folders if missing and empties `tmp/`.
    init(root: String) throws {
        self.root = root
        // The data directory and its parents, then the cache's own folders.
        var prefix = ""
        for component in root.split(separator: "/", omittingEmptySubsequences: true).dropLast() {
            prefix += (prefix.isEmpty && !root.hasPrefix("/") ? "" : "/") + component
            if mkdir(prefix, 0o700) != 0 && errno != EEXIST { throw Self.failure("mkdir \(prefix)") }
        }
        for dir in [root, root + "/blocks", root + "/tmp"] {
            if mkdir(dir, 0o700) != 0 && errno != EEXIST { throw Self.failure("mkdir \(dir)") }
        }
        for name in Self.list(root + "/tmp") { unlink(root + "/tmp/" + name) }
    }

    // MARK: - API

    /// The file name of a digest.
    static func name(code: Int64, digest: [UInt8]) -> String {
        "\(code)-" + hex(digest)
    }

    /// Writes `bytes` as the file `name` unless it exists. Throws on any I/O error.
    mutating func write(name: String, bytes: [UInt8]) throws {
        let final = path(of: name)
        var info = stat()
        if stat(final, &info) == 0, Int(info.st_size) == bytes.count { return }
        if mkdir(shard(of: name), 0o700) != 0 && errno != EEXIST { throw Self.failure("mkdir") }
        tmpCounter &+= 1
        let temporary = tmp + "/\(getpid())-\(tmpCounter)"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Self.failure("open") }
        var written = 0
        let ok = bytes.withUnsafeBytes { buffer -> Bool in
            guard let base = buffer.baseAddress else { return false }
            while written < buffer.count {
                let n = Glibc.write(fd, base + written, buffer.count - written)
                if n < 0 { if errno == EINTR { continue }; return false }
                written += n
            }
            return true
        }
        close(fd)
        guard ok, rename(temporary, final) == 0 else {
            unlink(temporary)
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

    /// Removes file `name` (no error if it is gone).
    func remove(name: String) {
        unlink(path(of: name))
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

    private static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func failure(_ what: String) -> StorageError {
        StorageError(code: errno, message: "\(what): \(String(cString: strerror(errno)))")
    }
}
