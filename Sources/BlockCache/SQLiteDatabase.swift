internal import CSQLite
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An error from SQLite (its result code) or from the file system (errno), with its message.
struct StorageError: Error, CustomStringConvertible {
    let code: Int32
    let message: String

    var description: String { "\(message) (\(code))" }
}

/// One SQLite connection with a cache of prepared statements.
///
/// Not Sendable: confined to the `BlockCache`'s I/O queue, which alone opens, uses and closes it.
final class SQLiteDatabase {
    // MARK: - Properties

    private var handle: OpaquePointer?
    private var statements: [String: SQLiteStatement] = [:]

    // MARK: - Init

    /// Opens (creating if needed) the database at `path`, without SQLite's own mutex (the queue
    /// serialises every call).
    /// The file is created 0600 before SQLite opens it, so its journal and WAL files, which
    /// SQLite creates with the database's mode, are private too; a link in its place is refused.
    init(path: String) throws {
        if !path.hasPrefix(":") {
            let fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw StorageError(code: SQLITE_CANTOPEN, message: "cannot create \(path): errno \(errno)") }
            #if canImport(Glibc)
            Glibc.close(fd)
            #else
            Darwin.close(fd)
            #endif
        }
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close_v2(db)
            throw StorageError(code: rc, message: message)
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
    }

    deinit { close() }

    // MARK: - API

    /// Finalises every statement and closes the connection (idempotent).
    func close() {
        for statement in statements.values { statement.finalize() }
        statements = [:]
        if let handle { sqlite3_close_v2(handle) }
        handle = nil
    }

    /// Runs one or more statements that bind nothing and return no rows of interest.
    func execute(_ sql: String) throws {
        guard let handle else { throw StorageError(code: SQLITE_MISUSE, message: "closed") }
        var error: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &error)
        if rc != SQLITE_OK {
            let message = error.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle))
            sqlite3_free(error)
            throw StorageError(code: rc, message: message)
        }
    }

    /// A prepared statement for `sql`, reset and with its bindings cleared, reused across calls.
    func statement(_ sql: String) throws -> SQLiteStatement {
        if let cached = statements[sql] {
            cached.reset()
            return cached
        }
        guard let handle else { throw StorageError(code: SQLITE_MISUSE, message: "closed") }
        var raw: OpaquePointer?
        let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &raw, nil)
        guard rc == SQLITE_OK, let raw else { throw StorageError(code: rc, message: String(cString: sqlite3_errmsg(handle))) }
        let statement = SQLiteStatement(raw, database: handle)
        statements[sql] = statement
        return statement
    }

    /// Runs `body` in one `BEGIN IMMEDIATE` transaction: committed if it returns, rolled back if it throws.
    func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            resetAll()
            try execute("COMMIT")
            return result
        } catch {
            resetAll()
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// Resets every cached statement, so that none keeps a read transaction open (in WAL mode a
    /// statement left mid-step would hold back checkpoints).
    func resetAll() {
        for statement in statements.values { statement.reset() }
    }

    /// The rowid of the last insert on this connection.
    var lastInsertRowID: Int64 {
        guard let handle else { return 0 }
        return sqlite3_last_insert_rowid(handle)
    }
}

@available(*, unavailable) extension SQLiteDatabase: Sendable {}

/// One prepared statement: bind by 1-based index, step, read columns by 0-based index.
final class SQLiteStatement {
    // MARK: - Properties

    private var raw: OpaquePointer?
    private let database: OpaquePointer

    // MARK: - Init

    init(_ raw: OpaquePointer, database: OpaquePointer) {
        self.raw = raw
        self.database = database
    }

    // MARK: - API

    func finalize() {
        sqlite3_finalize(raw)
        raw = nil
    }

    func reset() {
        sqlite3_reset(raw)
        sqlite3_clear_bindings(raw)
    }

    @discardableResult
    func bind(_ index: Int32, _ value: Int64) throws -> SQLiteStatement {
        try check(sqlite3_bind_int64(raw, index, value))
        return self
    }

    @discardableResult
    func bind(_ index: Int32, _ bytes: [UInt8]) throws -> SQLiteStatement {
        // An empty array may have no base address; SQLite reads a NULL pointer as SQL NULL, so
        // bind a zero-length blob explicitly.
        let rc = bytes.withUnsafeBytes { buffer in
            if let base = buffer.baseAddress, buffer.count > 0 {
                return peerdist_sqlite3_bind_blob_transient(raw, index, base, Int32(buffer.count))
            }
            return sqlite3_bind_zeroblob(raw, index, 0)
        }
        try check(rc)
        return self
    }

    /// Steps once: true when a row is available, false when done.
    func step() throws -> Bool {
        let rc = sqlite3_step(raw)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw StorageError(code: rc, message: String(cString: sqlite3_errmsg(database)))
        }
    }

    /// Steps until done (for statements that return no rows).
    func run() throws {
        while try step() {}
    }

    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(raw, column) }

    func bytes(_ column: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(raw, column))
        guard count > 0, let base = sqlite3_column_blob(raw, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: base, count: count))
    }

    // MARK: - Private

    private func check(_ rc: Int32) throws {
        guard rc == SQLITE_OK else { throw StorageError(code: rc, message: String(cString: sqlite3_errmsg(database))) }
    }
}

@available(*, unavailable) extension SQLiteStatement: Sendable {}
