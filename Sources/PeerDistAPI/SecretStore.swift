#if canImport(Glibc)
import Glibc
#endif
import Foundation
import PCCRC

/// The server secret: generated once into the data directory (mode 0600) and read back on every
/// start, or read from an operator's file (the key's raw bytes), so that segment ids stay stable
/// across restarts and replicas.
enum SecretStore {
    static let fileName = "server-secret"
    /// Largest secret file accepted.
    static let maxBytes = 4_096
    /// Smallest secret accepted: 128 bits.
    static let minBytes = 16
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Loads `secretFile` if given, else the data directory's secret, creating it on first use.
    /// - Throws: `Failure` when a secret file is unreadable, shorter than `minBytes` or longer than
    ///   `maxBytes`, when it or the data directory (created 0700 when missing) can be read or
    ///   written by group or others, or when the secret cannot be created.
    static func load(dataDirectory: String, secretFile: String?) throws -> ServerSecret {
        // The data directory holds the cache and its index whichever secret is used: checked
        // either way.
        try createDirectory(dataDirectory)
        try checkPrivate(dataDirectory, what: "the data directory", fix: "chmod 700")
        if let secretFile { return ServerSecret(keyBytes: try read(secretFile)) }
        let path = (dataDirectory as NSString).appendingPathComponent(fileName)
        if FileManager.default.fileExists(atPath: path) { return ServerSecret(keyBytes: try read(path)) }
        let secret = ServerSecret.random(byteCount: 32)
        try writeNew(path, secret.keyBytes, directory: dataDirectory)
        return secret
    }

    private static func read(_ path: String) throws -> [UInt8] {
        try checkPrivate(path, what: "the secret file", fix: "chmod 600")
        guard let data = FileManager.default.contents(atPath: path) else { throw Failure(description: "cannot read the secret file \(path)") }
        guard (minBytes...maxBytes).contains(data.count) else {
            throw Failure(description: "the secret file \(path) must hold \(minBytes) to \(maxBytes) bytes (the key's raw bytes), it holds \(data.count)")
        }
        return Array(data)
    }

    /// Refuses a path that group or others may read or write (the secret would not be secret).
    private static func checkPrivate(_ path: String, what: String, fix: String) throws {
        do { try PrivateFile.check(path, what: what, fix: fix) } catch { throw Failure(description: error.description) }
    }

    private static func createDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw Failure(description: "cannot create the data directory \(path): \(error.localizedDescription)")
        }
    }

    /// Writes the secret to a temporary file created 0600, renames it into place and syncs the
    /// directory, so that a crash never leaves a partial secret nor loses a secret already used.
    private static func writeNew(_ path: String, _ bytes: [UInt8], directory: String) throws {
        let temp = path + ".tmp"
        unlink(temp)
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Failure(description: "cannot create \(temp): errno \(errno)") }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        close(fd)
        guard written == bytes.count, synced == 0, rename(temp, path) == 0 else {
            unlink(temp)
            throw Failure(description: "cannot write the secret file \(path)")
        }
        // The rename is durable only once the directory entry is on disk.
        let dirFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dirFD >= 0 else { throw Failure(description: "cannot open the data directory \(directory) to sync it: errno \(errno)") }
        let dirSynced = fsync(dirFD)
        close(dirFD)
        guard dirSynced == 0 else { throw Failure(description: "cannot sync the data directory \(directory): errno \(errno)") }
    }
}
