/// The cache's state on disk: the SQLite index (`index.sqlite`, WAL) beside the pack files.
///
/// Every method runs on the `BlockCache`'s I/O queue; nothing here is thread-safe.
/// Readable entries are the rows of `entries` whose bytes, at their pack and offset, hash to their
/// digest; a row commits only after its bytes are written, and rows go before bytes on removal,
/// so after a crash the worst left behind is bytes without a row (punched at the next open).
///
/// Principals: an entry is identified by (segment, block, algorithm, digest, size), and is held by
/// the principals that added it (`holders`), each under its own tags (`entry_tags`; an untagged
/// add is the empty tag, which no flush names). Each holder is charged the entry's size; the entry
/// goes when its last holder lets go (a flush, or eviction of that holder's share). Staged pieces
/// belong to the principal that sent them: each assembles and verifies its own.
final class CacheStore {
    // MARK: - Schema

    static let schema = """
        CREATE TABLE IF NOT EXISTS entries(
            id INTEGER PRIMARY KEY,
            segment BLOB NOT NULL,
            block INTEGER NOT NULL,
            algo INTEGER NOT NULL,
            digest BLOB NOT NULL,
            size INTEGER NOT NULL,
            used INTEGER NOT NULL,
            pack INTEGER NOT NULL,
            offset INTEGER NOT NULL,
            UNIQUE(digest, algo, segment, block, size));
        CREATE INDEX IF NOT EXISTS entries_used ON entries(used);
        CREATE INDEX IF NOT EXISTS entries_location ON entries(pack, offset);
        CREATE TABLE IF NOT EXISTS holders(
            entry INTEGER NOT NULL, principal BLOB NOT NULL, used INTEGER NOT NULL,
            PRIMARY KEY(entry, principal)) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS holders_used ON holders(principal, used);
        CREATE TABLE IF NOT EXISTS entry_tags(
            entry INTEGER NOT NULL, principal BLOB NOT NULL, tag BLOB NOT NULL,
            PRIMARY KEY(entry, principal, tag)) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS entry_tags_tag ON entry_tags(principal, tag);
        CREATE TABLE IF NOT EXISTS staged(
            id INTEGER PRIMARY KEY,
            principal BLOB NOT NULL,
            segment BLOB NOT NULL,
            block INTEGER NOT NULL,
            algo INTEGER NOT NULL,
            digest BLOB NOT NULL,
            size INTEGER NOT NULL,
            used INTEGER NOT NULL,
            covered INTEGER NOT NULL DEFAULT 0,
            runs INTEGER NOT NULL DEFAULT 0,
            UNIQUE(principal, segment, block, algo, digest, size));
        CREATE INDEX IF NOT EXISTS staged_used ON staged(used);
        CREATE INDEX IF NOT EXISTS staged_principal_used ON staged(principal, used);
        CREATE TABLE IF NOT EXISTS staged_tags(
            staged INTEGER NOT NULL, tag BLOB NOT NULL, PRIMARY KEY(staged, tag)) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS staged_tags_tag ON staged_tags(tag);
        CREATE TABLE IF NOT EXISTS staged_pieces(
            staged INTEGER NOT NULL, offset INTEGER NOT NULL, data BLOB NOT NULL,
            PRIMARY KEY(staged, offset)) WITHOUT ROWID;
        """

    /// `PRAGMA user_version` of this schema. A folder written with another is emptied at open (a
    /// cache's entries can all be fetched again): 0 was the file-per-block layout, 2 keyed entries
    /// by (segment, block) alone and had no principals.
    static let schemaVersion = 3
    /// The tables of every former schema, dropped with it.
    static let formerTables = ["entries", "entry_tags", "holders", "staged", "staged_tags", "staged_pieces"]
    /// What the file-per-block layout kept beside the index, removed with it.
    static let formerFolders = ["blocks", "spare", "tmp"]

    /// Pending recency updates are written once this many reads have hit.
    static let maxPendingTouches = 512
    /// Entries removed per eviction query at most.
    static let evictionBatch = 64
    /// WAL pages written before SQLite checkpoints them into the database (its default is 1,000):
    /// a checkpoint syncs both files (fdatasync showed in the insert profile), and a 16 MiB WAL
    /// needs four times fewer.
    static let walCheckpointPages = 4096
    /// The tag of an untagged add: no flush names it (a content tag is 16 bytes).
    static let untagged: [UInt8] = []

    // MARK: - Properties

    private let db: SQLiteDatabase
    private var files: PackFileStore
    private let capacity: Int64
    private let stagingCapacity: Int64
    private let share: Int64?
    private let stats: StatisticsBox
    /// The recency clock: every insert and hit takes the next value.
    private var tick: Int64 = 0
    /// Hits not yet written to `entries.used` and `holders.used` (entry id → tick).
    private var pendingTouches: [Int64: Int64] = [:]
    private var bytes: Int64 = 0
    private var entries: Int64 = 0
    /// Staged data bytes, and what the staging bound counts (data and each run's row overhead).
    private var stagedBytes: Int64 = 0
    private var stagingCost: Int64 = 0
    /// Each principal's charge: the sizes of the entries it holds, and its staging cost.
    private var heldBy: [String: Int64] = [:]
    private var stagedBy: [String: Int64] = [:]

    // MARK: - Init

    init(configuration: BlockCacheConfiguration, stats: StatisticsBox) throws {
        try PackFileStore.makeFolder(configuration.directory)
        db = try SQLiteDatabase(path: configuration.directory + "/index.sqlite")
        capacity = configuration.capacityBytes
        stagingCapacity = configuration.stagingCapacityBytes
        share = configuration.sharePerPrincipalBytes
        self.stats = stats
        try db.execute("PRAGMA busy_timeout=5000")
        // One process owns the folder: the first write takes SQLite's lock and keeps it until
        // close (no lock calls per transaction, no shared-memory index), and a second opener
        // waits busy_timeout and fails, before it touches the packs below.
        try db.execute("PRAGMA locking_mode=EXCLUSIVE")
        try db.execute("BEGIN EXCLUSIVE; COMMIT")
        try Self.dropFormerLayout(db, directory: configuration.directory)
        files = try PackFileStore(root: configuration.directory)
        try db.execute("PRAGMA journal_mode=WAL")
        // NORMAL in WAL mode: a commit survives a process kill; after a power cut the database
        // is still consistent, and a file whose bytes did not reach the disk fails its digest.
        try db.execute("PRAGMA synchronous=NORMAL")
        try db.execute("PRAGMA wal_autocheckpoint=\(Self.walCheckpointPages)")
        try db.execute(Self.schema)
        try db.execute("PRAGMA user_version=\(Self.schemaVersion)")
        try loadTotals()
        try reclaimPacks()
        publish()
    }

    // MARK: - API: entries

    /// Stores the insertions that `admit` passes (it is asked in order, and may wait for the
    /// item's verification) in one transaction, held by `principal`, then evicts past the
    /// capacity. An item not admitted is `.refused(.digestMismatch)`.
    func insert(_ items: [BlockInsertion], principal: String, admit: (Int) -> Bool) -> [InsertOutcome] {
        var outcomes: [InsertOutcome] = []
        var removed: [Stored] = []
        do {
            try db.transaction {
                try writeTouches()
                for (index, item) in items.enumerated() {
                    guard admit(index) else {
                        outcomes.append(.refused(.digestMismatch))
                        continue
                    }
                    outcomes.append(try insertOne(item, principal: principal, tags: [item.tag?.bytes ?? Self.untagged]))
                }
                removed = try evictPastCapacity()
            }
        } catch {
            try? loadTotals()
            publish()
            return items.map { _ in .refused(.storageFailure) }
        }
        removeUnreferenced(removed)
        publish()
        return outcomes
    }

    /// Where the bytes of a run of entries are, for reading them off the I/O queue (`readLeading`):
    /// each entry's id, length, offset and the index of its pack's descriptor in `descriptors`,
    /// descriptors of the caller's own (`PackFileStore.duplicate`), to close.
    struct RunPlan: Sendable {
        var ids: [Int64] = []
        var sizes: [Int] = []
        var offsets: [Int64] = []
        var descriptorOf: [Int] = []
        var descriptors: [Int32] = []
    }

    /// Looks the entries of `items` up, in order, up to the first not cached under its digest, and
    /// says where their bytes are. An entry whose pack cannot be opened ends the run and is dropped
    /// as corrupt (its bytes are gone).
    func planRun(_ items: [(key: BlockKey, digest: BlockDigest)]) -> RunPlan {
        var plan = RunPlan()
        var opened: [Int64: Int] = [:]
        var gone: Row?
        for item in items {
            guard let row = try? lookup(item.key, item.digest) else { break }
            if opened[row.pack] == nil {
                guard let fd = files.duplicate(pack: row.pack) else {
                    gone = row
                    break
                }
                opened[row.pack] = plan.descriptors.count
                plan.descriptors.append(fd)
            }
            plan.ids.append(row.id)
            plan.sizes.append(Int(row.size))
            plan.offsets.append(row.offset)
            plan.descriptorOf.append(opened[row.pack] ?? 0)
        }
        db.resetAll()
        if let gone { dropCorrupt(id: gone.id, stored: gone.stored) }
        return plan
    }

    /// Records a verified read of entry `id` for the recency order.
    func touch(_ id: Int64) {
        tick += 1
        pendingTouches[id] = tick
        if pendingTouches.count >= Self.maxPendingTouches {
            try? db.transaction { try writeTouches() }
        }
    }

    /// Drops entry `id` (and every entry sharing its bytes) because its bytes did not verify.
    func dropCorrupt(id: Int64) {
        let found = try? db.statement("SELECT pack, offset, size FROM entries WHERE id = ?").bind(1, id)
        guard let row = found, (try? row.step()) == true else {
            // Removed meanwhile (evicted, flushed): its bytes were bad all the same.
            db.resetAll()
            stats.update { $0.corruptOnRead += 1 }
            return
        }
        let stored = Stored(location: .init(pack: row.int64(0), offset: row.int64(1)), size: row.int64(2))
        db.resetAll()
        dropCorrupt(id: id, stored: stored)
    }

    /// Where the bytes of an entry of `key` (under any digest) are on disk (the pack's path, the
    /// offset, the length), if one is cached.
    func location(of key: BlockKey) -> (path: String, offset: Int64, length: Int64)? {
        defer { db.resetAll() }
        guard let row = try? db.statement("SELECT pack, offset, size FROM entries WHERE segment = ? AND block = ? LIMIT 1")
            .bind(1, key.segment.bytes).bind(2, Int64(key.index)), (try? row.step()) == true
        else { return nil }
        return (files.path(of: row.int64(0)), row.int64(1), row.int64(2))
    }

    /// Where each readable entry's bytes are on disk (the pack's path, the offset, the length).
    func locations() -> [(path: String, offset: Int64, length: Int64)] {
        defer { db.resetAll() }
        guard let select = try? db.statement("SELECT pack, offset, size FROM entries ORDER BY id") else { return [] }
        var found: [(String, Int64, Int64)] = []
        while (try? select.step()) == true { found.append((files.path(of: select.int64(0)), select.int64(1), select.int64(2))) }
        return found
    }

    /// The lengths of the entries of `items` cached under their digest (nil where not). Reads the
    /// index only.
    func sizes(_ items: [(key: BlockKey, digest: BlockDigest)]) -> [Int?] {
        defer { db.resetAll() }
        return items.map { item in (try? lookup(item.key, item.digest)).flatMap { $0.map { Int($0.size) } } }
    }

    /// What each principal is charged: the entries it holds and its staged pieces.
    func usage() -> [String: PrincipalCacheUsage] {
        var usage: [String: PrincipalCacheUsage] = [:]
        for (principal, held) in heldBy where held > 0 { usage[principal, default: .init()].heldBytes = held }
        for (principal, staged) in stagedBy where staged > 0 { usage[principal, default: .init()].stagingBytes = staged }
        return usage
    }

    /// Removes `principal`'s (`principal`, `tag`) pairs: what it held under no other tag of its own
    /// (and never added untagged) it no longer holds, and entries and staged entries left with no
    /// holder are removed. Other principals' pairs are untouched, whatever their tags. Returns how
    /// many readable entries `principal` let go of.
    func flush(tag: ContentTag, principal: String) -> Int {
        let name = Array(principal.utf8)
        var removedNames: [Stored] = []
        var count = 0
        do {
            try db.transaction {
                try writeTouches()
                var ids: [Int64] = []
                let select = try db.statement("SELECT entry FROM entry_tags WHERE principal = ? AND tag = ?")
                try select.bind(1, name).bind(2, tag.bytes)
                while try select.step() { ids.append(select.int64(0)) }
                try db.statement("DELETE FROM entry_tags WHERE principal = ? AND tag = ?").bind(1, name).bind(2, tag.bytes).run()
                for id in ids {
                    let remaining = try db.statement("SELECT 1 FROM entry_tags WHERE entry = ? AND principal = ? LIMIT 1")
                    if try remaining.bind(1, id).bind(2, name).step() { continue }
                    let row = try db.statement("SELECT pack, offset, size FROM entries WHERE id = ?").bind(1, id)
                    guard try row.step() else { continue }
                    let stored = Stored(location: .init(pack: row.int64(0), offset: row.int64(1)), size: row.int64(2))
                    if try release(id, size: stored.size, principal: principal) { removedNames.append(stored) }
                    count += 1
                }
                var stagedIDs: [Int64] = []
                let stagedSelect = try db.statement(
                    "SELECT t.staged FROM staged_tags t JOIN staged s ON s.id = t.staged WHERE t.tag = ? AND s.principal = ?")
                try stagedSelect.bind(1, tag.bytes).bind(2, name)
                while try stagedSelect.step() { stagedIDs.append(stagedSelect.int64(0)) }
                for id in stagedIDs {
                    try db.statement("DELETE FROM staged_tags WHERE staged = ? AND tag = ?").bind(1, id).bind(2, tag.bytes).run()
                    if try db.statement("SELECT 1 FROM staged_tags WHERE staged = ? LIMIT 1").bind(1, id).step() { continue }
                    try deleteStaged(id)
                }
            }
        } catch {
            try? loadTotals()
            publish()
            return count
        }
        removeUnreferenced(removedNames)
        publish()
        return count
    }

    /// Writes pending recency updates and closes the database.
    func close() {
        try? db.transaction { try writeTouches() }
        db.close()
        files.closeAll()
    }

    // MARK: - API: staging

    /// Adds `principal`'s piece of a not yet complete entry; once its pieces cover `length` bytes
    /// the entry is verified against `digest` and either stored (readable) or dropped with every
    /// piece. Another principal's pieces of the same entry are never mixed in.
    func stage(key: BlockKey, digest: BlockDigest, length: Int, offset: Int, bytes: [UInt8], tag: ContentTag?, principal: String)
        -> StageOutcome
    {
        guard length > 0, length <= digest.function.maximumEntryLength, !bytes.isEmpty,
            offset >= 0, offset <= length, bytes.count <= length - offset
        else { return .refused(.invalidLength) }
        guard Self.stagingCost(covered: Int64(length), runs: 1) <= stagingCapacity, Int64(length) <= capacity else {
            return .refused(.largerThanCapacity)
        }
        var outcome: StageOutcome = .refused(.storageFailure)
        var removed: [Stored] = []
        do {
            try db.transaction {
                try writeTouches()
                outcome = try stageOne(
                    key: key, digest: digest, length: length, offset: offset, bytes: bytes, tag: tag, principal: principal)
                if outcome == .stored { removed = try evictPastCapacity() }
                try evictStagingPastCapacity()
            }
        } catch {
            try? loadTotals()
            publish()
            return .refused(.storageFailure)
        }
        removeUnreferenced(removed)
        publish()
        return outcome
    }

    /// Disjoint runs one staged entry may be in at most: a piece that would leave more is refused
    /// (`.tooFragmented`), so that a piece costs at most this many rows.
    static let maxStagedRuns = 64
    /// What the staging bound counts for each run's row besides its bytes.
    static let stagedRunOverhead: Int64 = 64

    /// What the staging bound counts for a staged entry.
    static func stagingCost(covered: Int64, runs: Int64) -> Int64 { covered + runs * stagedRunOverhead }

    // MARK: - Private: entries

    /// An entry's bytes: where they are and how many (entries with equal bytes share them).
    private struct Stored: Hashable {
        let location: PackFileStore.Location
        let size: Int64
    }

    private struct Row {
        let id: Int64
        let size: Int64
        let pack: Int64
        let offset: Int64

        var stored: Stored { Stored(location: .init(pack: pack, offset: offset), size: size) }
    }

    /// The columns `row(_:)` reads, in its order.
    private static let rowColumns = "id, size, pack, offset"

    private static func row(_ statement: SQLiteStatement) -> Row {
        Row(id: statement.int64(0), size: statement.int64(1), pack: statement.int64(2), offset: statement.int64(3))
    }

    /// The entry of `key` cached under `digest` (of any size when `size` is nil).
    private func lookup(_ key: BlockKey, _ digest: BlockDigest, size: Int64? = nil) throws -> Row? {
        let statement = try db.statement(
            "SELECT \(Self.rowColumns) FROM entries WHERE segment = ? AND block = ? AND algo = ? AND digest = ? LIMIT 1")
        try statement.bind(1, key.segment.bytes).bind(2, Int64(key.index)).bind(3, digest.function.storageCode)
            .bind(4, digest.bytes)
        guard try statement.step() else { return nil }
        let row = Self.row(statement)
        return size == nil || row.size == size ? row : nil
    }

    /// Inserts one verified entry held by `principal` under `tags` (inside a transaction). The file
    /// is written before the row.
    private func insertOne(_ item: BlockInsertion, principal: String, tags: [[UInt8]]) throws -> InsertOutcome {
        let size = Int64(item.bytes.count)
        guard size > 0, item.bytes.count <= item.digest.function.maximumEntryLength else { return .refused(.invalidLength) }
        let code = item.digest.function.storageCode
        if let existing = try lookup(item.key, item.digest, size: size) {
            tick += 1
            try hold(existing.id, size: size, principal: principal, tags: tags)
            pendingTouches[existing.id] = tick
            return .alreadyPresent
        }
        guard size <= capacity else { return .refused(.largerThanCapacity) }
        // Equal bytes under another key are stored once.
        let twin = try db.statement("SELECT pack, offset FROM entries WHERE digest = ? AND algo = ? AND size = ? LIMIT 1")
        try twin.bind(1, item.digest.bytes).bind(2, code).bind(3, size)
        let location = try twin.step()
            ? PackFileStore.Location(pack: twin.int64(0), offset: twin.int64(1)) : try files.append(item.bytes)
        twin.reset()
        tick += 1
        let insert = try db.statement(
            "INSERT INTO entries(segment, block, algo, digest, size, used, pack, offset) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
        try insert.bind(1, item.key.segment.bytes).bind(2, Int64(item.key.index)).bind(3, code)
            .bind(4, item.digest.bytes).bind(5, size).bind(6, tick)
            .bind(7, location.pack).bind(8, location.offset)
        try insert.run()
        let id = db.lastInsertRowID
        bytes += size
        entries += 1
        try hold(id, size: size, principal: principal, tags: tags, isNew: true)
        return .stored
    }

    /// Makes `principal` a holder of entry `id` (charged `size` the first time) under `tags`, its
    /// recency now. `isNew`: the entry was just inserted, so it has no holder yet.
    private func hold(_ id: Int64, size: Int64, principal: String, tags: [[UInt8]], isNew: Bool = false) throws {
        let name = Array(principal.utf8)
        let held = try db.statement("SELECT 1 FROM holders WHERE entry = ? AND principal = ?").bind(1, id).bind(2, name)
        if try !isNew && held.step() {
            held.reset()
            try db.statement("UPDATE holders SET used = ? WHERE entry = ? AND principal = ?").bind(1, tick).bind(2, id).bind(3, name).run()
        } else {
            held.reset()
            try db.statement("INSERT INTO holders(entry, principal, used) VALUES (?, ?, ?)").bind(1, id).bind(2, name).bind(3, tick).run()
            heldBy[principal, default: 0] += size
        }
        for tag in tags {
            try db.statement("INSERT OR IGNORE INTO entry_tags(entry, principal, tag) VALUES (?, ?, ?)")
                .bind(1, id).bind(2, name).bind(3, tag).run()
        }
    }

    /// Ends `principal`'s hold of entry `id` (its tags go with it); the entry goes when no holder is
    /// left. Returns whether it went.
    private func release(_ id: Int64, size: Int64, principal: String) throws -> Bool {
        let name = Array(principal.utf8)
        try db.statement("DELETE FROM entry_tags WHERE entry = ? AND principal = ?").bind(1, id).bind(2, name).run()
        try db.statement("DELETE FROM holders WHERE entry = ? AND principal = ?").bind(1, id).bind(2, name).run()
        charge(principal, -size)
        if try db.statement("SELECT 1 FROM holders WHERE entry = ? LIMIT 1").bind(1, id).step() { return false }
        try deleteEntry(id, size: size)
        return true
    }

    /// Deletes entry `id` and every hold of it.
    private func deleteEntry(_ id: Int64, size: Int64) throws {
        var holders: [String] = []
        let select = try db.statement("SELECT principal FROM holders WHERE entry = ?").bind(1, id)
        while try select.step() { holders.append(String(decoding: select.bytes(0), as: UTF8.self)) }
        for holder in holders { charge(holder, -size) }
        try db.statement("DELETE FROM entry_tags WHERE entry = ?").bind(1, id).run()
        try db.statement("DELETE FROM holders WHERE entry = ?").bind(1, id).run()
        try db.statement("DELETE FROM entries WHERE id = ?").bind(1, id).run()
        pendingTouches[id] = nil
        bytes -= size
        entries -= 1
    }

    private func charge(_ principal: String, _ delta: Int64) {
        let now = (heldBy[principal] ?? 0) + delta
        heldBy[principal] = now > 0 ? now : nil
    }

    /// The principal furthest above its share of `bound` among those charged in `charges`, and
    /// that share: the configured share, else `bound` divided among the principals charged.
    static func mostAboveShare(_ charges: [String: Int64], bound: Int64, share configured: Int64?) -> (String, Int64)? {
        let charged = charges.filter { $0.value > 0 }
        guard !charged.isEmpty else { return nil }
        let share = configured ?? bound / Int64(charged.count)
        let above = charged.filter { $0.value > share }
        guard let worst = above.max(by: { ($0.value, $1.key) < ($1.value, $0.key) }) else { return nil }
        return (worst.key, share)
    }

    /// Evicts until the bytes fit: first the least recently used holds of the principals above
    /// their fair share (an entry goes once no holder is left), then least recently used entries.
    /// Returns where the bytes of the entries removed were.
    private func evictPastCapacity() throws -> [Stored] {
        var names: [Stored] = []
        while bytes > capacity {
            // As many rows as 64 KiB entries would free the excess (usually one per block just
            // stored), not a fixed batch: the rows not needed would be read for nothing.
            let wanted = max(min(Int64(Self.evictionBatch), (bytes - capacity + 65_535) / 65_536), 1)
            if let (principal, share) = Self.mostAboveShare(heldBy, bound: capacity, share: share) {
                let select = try db.statement(
                    "SELECT e.id, e.size, e.pack, e.offset FROM holders h JOIN entries e ON e.id = h.entry"
                        + " WHERE h.principal = ? ORDER BY h.used LIMIT ?")
                try select.bind(1, Array(principal.utf8)).bind(2, wanted)
                var victims: [Row] = []
                while try select.step() { victims.append(Self.row(select)) }
                guard !victims.isEmpty else {
                    heldBy[principal] = nil  // charged for nothing it holds: not a holder
                    continue
                }
                for victim in victims where bytes > capacity && (heldBy[principal] ?? 0) > share {
                    guard try release(victim.id, size: victim.size, principal: principal) else { continue }
                    names.append(victim.stored)
                    stats.update { $0.evictions += 1 }
                }
                continue
            }
            let select = try db.statement("SELECT \(Self.rowColumns) FROM entries ORDER BY used LIMIT ?")
            try select.bind(1, wanted)
            var victims: [Row] = []
            while try select.step() { victims.append(Self.row(select)) }
            guard !victims.isEmpty else { break }
            for victim in victims where bytes > capacity {
                try deleteEntry(victim.id, size: victim.size)
                names.append(victim.stored)
                stats.update { $0.evictions += 1 }
            }
        }
        return names
    }

    /// Frees the bytes of `refs` that no entry refers to any more (after the rows committed), and
    /// deletes the packs left without entries.
    private func removeUnreferenced(_ refs: [Stored]) {
        let unreferenced = Set(refs).filter { !isReferenced("pack = ? AND offset = ?", $0.location.pack, $0.location.offset) }
        for stored in unreferenced { files.release(stored.location, length: stored.size) }
        for pack in Set(unreferenced.map(\.location.pack)) where !isReferenced("pack = ?", pack) {
            files.remove(pack: pack)
        }
    }

    /// Whether an entry matches `condition` (with `values` bound in order); true when unsure.
    private func isReferenced(_ condition: String, _ values: Int64...) -> Bool {
        defer { db.resetAll() }
        guard let statement = try? db.statement("SELECT 1 FROM entries WHERE \(condition) LIMIT 1") else { return true }
        for (index, value) in values.enumerated() where (try? statement.bind(Int32(index + 1), value)) == nil { return true }
        return (try? statement.step()) ?? true
    }

    private func dropCorrupt(id: Int64, stored: Stored) {
        stats.update { $0.corruptOnRead += 1 }
        do {
            try db.transaction {
                try writeTouches()
                // Every entry sharing these bytes is as bad as the one read.
                let select = try db.statement("SELECT id, size FROM entries WHERE (pack = ? AND offset = ?) OR id = ?")
                try select.bind(1, stored.location.pack).bind(2, stored.location.offset).bind(3, id)
                var victims: [(Int64, Int64)] = []
                while try select.step() { victims.append((select.int64(0), select.int64(1))) }
                for (victim, size) in victims { try deleteEntry(victim, size: size) }
            }
        } catch {
            try? loadTotals()
        }
        removeUnreferenced([stored])
        publish()
    }

    private func writeTouches() throws {
        guard !pendingTouches.isEmpty else { return }
        let update = try db.statement("UPDATE entries SET used = ? WHERE id = ?")
        let holders = try db.statement("UPDATE holders SET used = ? WHERE entry = ?")
        for (id, used) in pendingTouches {
            update.reset()
            try update.bind(1, used).bind(2, id)
            try update.run()
            holders.reset()
            try holders.bind(1, used).bind(2, id)
            try holders.run()
        }
        pendingTouches = [:]
    }

    // MARK: - Private: staging

    private func stageOne(
        key: BlockKey, digest: BlockDigest, length: Int, offset: Int, bytes piece: [UInt8], tag: ContentTag?, principal: String
    ) throws -> StageOutcome {
        let code = digest.function.storageCode
        let tagBytes = tag?.bytes ?? Self.untagged
        if let existing = try lookup(key, digest, size: Int64(length)) {
            tick += 1
            try hold(existing.id, size: existing.size, principal: principal, tags: [tagBytes])
            pendingTouches[existing.id] = tick
            return .alreadyPresent
        }
        let name = Array(principal.utf8)
        tick += 1
        var stagedID: Int64
        var covered: Int64 = 0
        var runCount: Int64 = 0
        let find = try db.statement(
            "SELECT id, covered, runs FROM staged WHERE principal = ? AND segment = ? AND block = ? AND algo = ? AND digest = ? AND size = ?")
        try find.bind(1, name).bind(2, key.segment.bytes).bind(3, Int64(key.index)).bind(4, code).bind(5, digest.bytes)
            .bind(6, Int64(length))
        let found = try find.step()
        if found {
            (stagedID, covered, runCount) = (find.int64(0), find.int64(1), find.int64(2))
        } else {
            stagedID = 0
        }
        find.reset()

        // The runs the piece overlaps or touches merge with it; the others stay as they are.
        var runs: [(start: Int, data: [UInt8])] = []
        if found {
            let pieces = try db.statement("SELECT offset, data FROM staged_pieces WHERE staged = ? ORDER BY offset").bind(1, stagedID)
            while try pieces.step() {
                let start = pieces.int64(0)
                let data = pieces.bytes(1)
                // A piece that does not fit was not written by this code: ignore it.
                guard start >= 0, start <= Int64(length), data.count <= length - Int(start), !data.isEmpty else { continue }
                runs.append((Int(start), data))
            }
            pieces.reset()
        }
        let pieceEnd = offset + piece.count
        let merging = runs.filter { $0.start <= pieceEnd && $0.start + $0.data.count >= offset }
        let kept = runs.count - merging.count
        guard kept + 1 <= Self.maxStagedRuns else { return .refused(.tooFragmented) }
        let mergedStart = min(offset, merging.map(\.start).min() ?? offset)
        let mergedEnd = max(pieceEnd, merging.map { $0.start + $0.data.count }.max() ?? pieceEnd)
        var merged = [UInt8](repeating: 0, count: mergedEnd - mergedStart)
        for run in merging { merged.replaceSubrange((run.start - mergedStart)..<(run.start - mergedStart + run.data.count), with: run.data) }
        // Later bytes win where they overlap.
        merged.replaceSubrange((offset - mergedStart)..<(pieceEnd - mergedStart), with: piece)

        if !found {
            let insert = try db.statement(
                "INSERT INTO staged(principal, segment, block, algo, digest, size, used) VALUES (?, ?, ?, ?, ?, ?, ?)")
            try insert.bind(1, name).bind(2, key.segment.bytes).bind(3, Int64(key.index)).bind(4, code).bind(5, digest.bytes)
                .bind(6, Int64(length)).bind(7, tick)
            try insert.run()
            stagedID = db.lastInsertRowID
        }
        try db.statement("INSERT OR IGNORE INTO staged_tags(staged, tag) VALUES (?, ?)").bind(1, stagedID).bind(2, tagBytes).run()

        if kept == 0, mergedStart == 0, mergedEnd == length {
            let tags = try stagedTags(stagedID)
            try deleteStaged(stagedID)
            guard EntryHasher.matches(merged, digest) else {
                stats.update { $0.rejectedOnEntry += 1 }
                return .refused(.digestMismatch)
            }
            let item = BlockInsertion(key: key, digest: digest, bytes: merged, tag: nil)
            switch try insertOne(item, principal: principal, tags: tags) {
            case .stored, .alreadyPresent: return .stored
            case .refused(let why): return .refused(why)
            }
        }
        // Only the runs merged are rewritten.
        for run in merging {
            try db.statement("DELETE FROM staged_pieces WHERE staged = ? AND offset = ?").bind(1, stagedID).bind(2, Int64(run.start)).run()
        }
        try db.statement("INSERT INTO staged_pieces(staged, offset, data) VALUES (?, ?, ?)")
            .bind(1, stagedID).bind(2, Int64(mergedStart)).bind(3, merged).run()
        let before = merging.reduce(0) { $0 + Int64($1.data.count) }
        let newCovered = covered - before + Int64(merged.count)
        let newRuns = Int64(kept + 1)
        try db.statement("UPDATE staged SET used = ?, covered = ?, runs = ? WHERE id = ?")
            .bind(1, tick).bind(2, newCovered).bind(3, newRuns).bind(4, stagedID).run()
        let costDelta = Self.stagingCost(covered: newCovered, runs: newRuns) - Self.stagingCost(covered: covered, runs: runCount)
        stagedBytes += newCovered - covered
        stagingCost += costDelta
        stagedBy[principal, default: 0] += costDelta
        return .staged(coveredBytes: Int(newCovered))
    }

    private func stagedTags(_ id: Int64) throws -> [[UInt8]] {
        var tags: [[UInt8]] = []
        let select = try db.statement("SELECT tag FROM staged_tags WHERE staged = ?").bind(1, id)
        while try select.step() { tags.append(select.bytes(0)) }
        return tags
    }

    private func deleteStaged(_ id: Int64) throws {
        let row = try db.statement("SELECT principal, covered, runs FROM staged WHERE id = ?").bind(1, id)
        if try row.step() {
            let principal = String(decoding: row.bytes(0), as: UTF8.self)
            let cost = Self.stagingCost(covered: row.int64(1), runs: row.int64(2))
            stagedBytes -= row.int64(1)
            stagingCost -= cost
            let left = (stagedBy[principal] ?? 0) - cost
            stagedBy[principal] = left > 0 ? left : nil
        }
        row.reset()
        try db.statement("DELETE FROM staged_pieces WHERE staged = ?").bind(1, id).run()
        try db.statement("DELETE FROM staged_tags WHERE staged = ?").bind(1, id).run()
        try db.statement("DELETE FROM staged WHERE id = ?").bind(1, id).run()
    }

    /// Drops staged entries until the staging bound holds: first the oldest of the principals
    /// above their share of it, then the oldest.
    private func evictStagingPastCapacity() throws {
        while stagingCost > stagingCapacity {
            let oldest: SQLiteStatement
            if let (principal, _) = Self.mostAboveShare(stagedBy, bound: stagingCapacity, share: nil) {
                oldest = try db.statement("SELECT id FROM staged WHERE principal = ? ORDER BY used LIMIT 1")
                try oldest.bind(1, Array(principal.utf8))
                guard try oldest.step() else {
                    stagedBy[principal] = nil
                    continue
                }
            } else {
                oldest = try db.statement("SELECT id FROM staged ORDER BY used LIMIT 1")
                guard try oldest.step() else { break }
            }
            let id = oldest.int64(0)
            oldest.reset()
            try deleteStaged(id)
            stats.update { $0.stagingEvictions += 1 }
        }
    }

    // MARK: - Private: open

    private func loadTotals() throws {
        let totals = try db.statement("SELECT COALESCE(SUM(size), 0), COUNT(*), COALESCE(MAX(used), 0) FROM entries")
        if try totals.step() {
            bytes = totals.int64(0)
            entries = totals.int64(1)
            tick = max(tick, totals.int64(2))
        }
        heldBy = [:]
        let held = try db.statement(
            "SELECT h.principal, SUM(e.size), MAX(h.used) FROM holders h JOIN entries e ON e.id = h.entry GROUP BY h.principal")
        while try held.step() {
            heldBy[String(decoding: held.bytes(0), as: UTF8.self)] = held.int64(1)
            tick = max(tick, held.int64(2))
        }
        (stagedBytes, stagingCost, stagedBy) = (0, 0, [:])
        let staged = try db.statement("SELECT principal, SUM(covered), SUM(runs), MAX(used) FROM staged GROUP BY principal")
        while try staged.step() {
            let cost = Self.stagingCost(covered: staged.int64(1), runs: staged.int64(2))
            stagedBy[String(decoding: staged.bytes(0), as: UTF8.self)] = cost
            stagedBytes += staged.int64(1)
            stagingCost += cost
            tick = max(tick, staged.int64(3))
        }
        db.resetAll()
    }

    /// Frees the pack bytes no entry refers to (left by a crash between bytes and rows), deletes
    /// the packs without entries, and drops the rows whose pack is gone (removed by hand, say).
    private func reclaimPacks() throws {
        let existing = Set(files.allPacks())
        let highest = try db.statement("SELECT COALESCE(MAX(pack), 0) FROM entries")
        if try highest.step() { files.numberAfter(highest.int64(0)) }
        var orphans: [(Int64, Int64)] = []
        let named = try db.statement("SELECT id, size, pack FROM entries")
        while try named.step() {
            if !existing.contains(named.int64(2)) { orphans.append((named.int64(0), named.int64(1))) }
        }
        db.resetAll()
        if !orphans.isEmpty {
            try db.transaction { for (id, size) in orphans { try deleteEntry(id, size: size) } }
        }
        let select = try db.statement("SELECT DISTINCT offset, size FROM entries WHERE pack = ? ORDER BY offset")
        for pack in existing {
            select.reset()
            try select.bind(1, pack)
            var live: [(offset: Int64, length: Int64)] = []
            while try select.step() { live.append((select.int64(0), select.int64(1))) }
            files.reclaim(pack: pack, live: live)
        }
        db.resetAll()
    }

    /// Empties a folder written with another schema (or none): its tables and former folders go.
    private static func dropFormerLayout(_ db: SQLiteDatabase, directory: String) throws {
        let version = try db.statement("PRAGMA user_version")
        let current = try version.step() ? version.int64(0) : 0
        db.resetAll()
        guard current != Int64(schemaVersion) else { return }
        for table in formerTables {
            try db.execute("DROP TABLE IF EXISTS \(table)")
        }
        for folder in formerFolders { PackFileStore.removeTree(directory + "/" + folder) }
    }

    private func publish() {
        let (bytes, entries, stagedBytes) = (bytes, entries, stagedBytes)
        stats.update {
            $0.bytes = bytes
            $0.entries = entries
            $0.stagedBytes = stagedBytes
        }
    }
}

@available(*, unavailable) extension CacheStore: Sendable {}

/// Disjoint, sorted, merged half-open ranges.
struct CoveredRanges {
    private(set) var ranges: [Range<Int>] = []

    mutating func add(_ range: Range<Int>) {
        guard !range.isEmpty else { return }
        var merged = range
        var kept: [Range<Int>] = []
        for existing in ranges {
            if existing.upperBound < merged.lowerBound || existing.lowerBound > merged.upperBound {
                kept.append(existing)
            } else {
                merged = min(existing.lowerBound, merged.lowerBound)..<max(existing.upperBound, merged.upperBound)
            }
        }
        kept.append(merged)
        ranges = kept.sorted { $0.lowerBound < $1.lowerBound }
    }
}
