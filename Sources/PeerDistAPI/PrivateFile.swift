#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The one rule for files and directories that hold secrets or decide who may call what (the
/// server secret, the data directory, the tokens file, the admin token file, the configuration
/// file): neither group nor others may read or write them.
public enum PrivateFile {
    /// Permission bits that must be clear: none of group or others may read or write.
    public static let forbiddenModeBits: mode_t = 0o066

    /// Why a path was refused.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Refuses a path that group or others may read or write, or that cannot be examined.
    /// - Parameters:
    ///   - what: What the path is, for the message ("the tokens file").
    ///   - fix: The command that mends it ("chmod 600").
    /// - Throws: `Failure` naming the path, its mode and the fix.
    public static func check(_ path: String, what: String, fix: String) throws(Failure) {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw Failure(description: "cannot read \(what) \(path): \(String(cString: strerror(errno)))")
        }
        let mode = info.st_mode & 0o777
        guard mode & forbiddenModeBits == 0 else {
            throw Failure(description: "\(what) \(path) has mode \(String(mode, radix: 8)), readable or writable by group or others; "
                + "refusing to use it (\(fix) \(path))")
        }
    }

    /// Checks a file as `check` does, then reads at most `maxBytes` of it.
    /// - Throws: `Failure` when it is not private, cannot be read or holds more than `maxBytes`.
    public static func read(_ path: String, what: String, maxBytes: Int) throws(Failure) -> [UInt8] {
        try check(path, what: what, fix: "chmod 600")
        guard let handle = FileHandle(forReadingAtPath: path) else { throw Failure(description: "cannot read \(what) \(path)") }
        defer { try? handle.close() }
        guard let data = try? handle.read(upToCount: maxBytes + 1) else { throw Failure(description: "cannot read \(what) \(path)") }
        guard data.count <= maxBytes else { throw Failure(description: "\(what) \(path) holds more than \(maxBytes) bytes") }
        return Array(data)
    }
}
