/// The cache's state on disk: the SQLite index (`index.sqlite`, WAL) beside the pack files.
///
/// Every method runs on the `BlockCache`'s I/O queue; nothing here is thread-safe.
/// Readable entries are the rows of `entries` whose bytes, at their pack and offset, hash to their
/// digest; a row commits only after its bytes are written, and rows go before bytes on removal,
/// so after a crash the worst left behind is bytes without a row (punched at the next open).
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
            anonymous INTEGER NOT NULL DEFAULT 0,
            pack INTEGER NOT NULL,
            offset INTEGER NOT NULL,
            UNIQUE(segment, block));
        CREATE INDEX IF NOT EXISTS entries_used ON entries(used);
        CREATE INDEX IF NOT EXISTS entries_digest ON entries(digest);
        CREATE INDEX IF NOT EXISTS entries_location ON entries(pack, offset);
        CREATE TABLE IF NOT EXISTS entry_tags(
            tag BLOB NOT NULL, entry INTEGER NOT NULL, PRIMARY KEY(tag, entry)) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS entry_tags_entry ON entry_tags(entry);
        CREATE TABLE IF NOT EXISTS staged(
            id INTEGER PRIMARY KEY,
            segment BLOB NOT NULL,
            block INTEGER NOT NULL,
            algo INTEGER NOT NULL,
            digest BLOB NOT NULL,
            size INTEGER NOT NULL,
            used INTEGER NOT NULL,
            anonymous INTEGER NOT NULL DEFAULT 0,
            UNIQUE(segment, block));
        CREATE INDEX IF NOT EXISTS staged_used ON staged(used);
        CREATE TABLE IF NOT EXISTS staged_tags(
            tag BLOB NOT NULL, staged INTEGER NOT NULL, PRIMARY KEY(tag, staged)) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS staged_tags_staged ON staged_tags(staged);
        CREATE TABLE IF NOT EXISTS staged_pieces(
            staged INTEGER NOT NULL, offset INTEGER NOT NULL, data BLOB NOT NULL,
            PRIMARY KEY(staged, offset)) WITHOUT ROWID;
        """

    /// `PRAGMA user_version` of this schema. A folder written with another (the file-per-block
    /// layout was 0) is emptied at open: a cache's entries can all be fetched again.
    static let schemaVersion = 2
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

    // MARK: - Properties

    private let db: SQLiteDatabase
    private var files: PackFileStore
    private let capacity: Int64
    private let stagingCapacity: Int64
    private let stats: StatisticsBox
    /// The recency clock: every insert and hit takes the next value.
    private var tick: Int64 = 0
    /// Hits not yet written to `entries.used` (entry id → tick).
    private var pendingTouches: [Int64: Int64] = [:]
    private var bytes: Int64 = 0
    private var entries: Int64 = 0
    private var stagedBytes: Int64 = 0

    // MARK: - Init

    init(configuration: BlockCacheConfiguration, stats: StatisticsBox) throws {
        try PackFileStore.makeFolder(configuration.directory)
        db = try SQLiteDatabase(path: configuration.directory + "/index.sqlite")
        capacity = configuration.capacityBytes
        stagingCapacity = configuration.stagingCapacityBytes
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
    /// item's verification) in one transaction, then evicts past the capacity. An item not
    /// admitted is `.refused(.digestMismatch)`.
    func insert(_ items: [BlockInsertion], admit: (Int) -> Bool) -> [InsertOutcome] {
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
                    outcomes.append(try insertOne(item, extraTags: [], anonymous: item.tag == nil))
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
    /// as corrupt (its bytes are gone). An entry cached under another digest is a miss.
    func planRun(_ items: [(key: BlockKey, digest: BlockDigest)]) -> RunPlan {
        var plan = RunPlan()
        var opened: [Int64: Int] = [:]
        var gone: Row?
        for item in items {
            guard let row = try? lookup(item.key), row.algo == item.digest.function.storageCode,
                row.digest == item.digest.bytes
            else { break }
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

    /// Where `key`'s bytes are on disk (the pack's path, the offset, the length), if cached.
    func location(of key: BlockKey) -> (path: String, offset: Int64, length: Int64)? {
        defer { db.resetAll() }
        guard let row = try? lookup(key) else { return nil }
        return (files.path(of: row.pack), row.offset, row.size)
    }

    /// Where each readable entry's bytes are on disk (the pack's path, the offset, the length).
    func locations() -> [(path: String, offset: Int64, length: Int64)] {
        defer { db.resetAll() }
        guard let select = try? db.statement("SELECT pack, offset, size FROM entries ORDER BY id") else { return [] }
        var found: [(String, Int64, Int64)] = []
        while (try? select.step()) == true { found.append((files.path(of: select.int64(0)), select.int64(1), select.int64(2))) }
        return found
    }

    /// The lengths of the cached entries of `keys` (nil where not cached). Reads the index only.
    func sizes(_ keys: [BlockKey]) -> [Int?] {
        defer { db.resetAll() }
        return keys.map { key in (try? lookup(key)).flatMap { $0.map { Int($0.size) } } }
    }

    /// Removes `tag` from everything added under it; entries and staged entries left with no tag
    /// (and never added untagged) are removed. Returns how many readable entries went.
    func flush(tag: ContentTag) -> Int {
        var removedNames: [Stored] = []
        var count = 0
        do {
            try db.transaction {
                try writeTouches()
                var ids: [Int64] = []
                let select = try db.statement("SELECT entry FROM entry_tags WHERE tag = ?")
                try select.bind(1, tag.bytes)
                while try select.step() { ids.append(select.int64(0)) }
                try db.statement("DELETE FROM entry_tags WHERE tag = ?").bind(1, tag.bytes).run()
                for id in ids {
                    let remaining = try db.statement("SELECT 1 FROM entry_tags WHERE entry = ? LIMIT 1").bind(1, id)
                    if try remaining.step() { continue }
                    let row = try db.statement("SELECT pack, offset, size, anonymous FROM entries WHERE id = ?").bind(1, id)
                    guard try row.step(), row.int64(3) == 0 else { continue }
                    let size = row.int64(2)
                    removedNames.append(Stored(location: .init(pack: row.int64(0), offset: row.int64(1)), size: size))
                    try deleteEntry(id, size: size)
                    count += 1
                }
                var stagedIDs: [Int64] = []
                let stagedSelect = try db.statement("SELECT staged FROM staged_tags WHERE tag = ?").bind(1, tag.bytes)
                while try stagedSelect.step() { stagedIDs.append(stagedSelect.int64(0)) }
                try db.statement("DELETE FROM staged_tags WHERE tag = ?").bind(1, tag.bytes).run()
                for id in stagedIDs {
                    if try db.statement("SELECT 1 FROM staged_tags WHERE staged = ? LIMIT 1").bind(1, id).step() { continue }
                    let row = try db.statement("SELECT anonymous FROM staged WHERE id = ?").bind(1, id)
                    guard try row.step(), row.int64(0) == 0 else { continue }
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

    /// Adds a piece of a not yet complete entry; once its pieces cover `length` bytes the entry is
    /// verified against `digest` and either stored (readable) or dropped with every piece.
    func stage(key: BlockKey, digest: BlockDigest, length: Int, offset: Int, bytes: [UInt8], tag: ContentTag?) -> StageOutcome {
        guard length > 0, length <= digest.function.maximumEntryLength, !bytes.isEmpty,
            offset >= 0, offset <= length, bytes.count <= length - offset
        else { return .refused(.invalidLength) }
        guard Int64(length) <= stagingCapacity, Int64(length) <= capacity else { return .refused(.largerThanCapacity) }
        var outcome: StageOutcome = .refused(.storageFailure)
        var removed: [Stored] = []
        do {
            try db.transaction {
                try writeTouches()
                outcome = try stageOne(key: key, digest: digest, length: length, offset: offset, bytes: bytes, tag: tag)
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

    // MARK: - Private: entries

    /// An entry's bytes: where they are and how many (entries with equal bytes share them).
    private struct Stored: Hashable {
        let location: PackFileStore.Location
        let size: Int64
    }

    private struct Row {
        let id: Int64
        let algo: Int64
        let digest: [UInt8]
        let size: Int64
        let pack: Int64
        let offset: Int64

        var stored: Stored { Stored(location: .init(pack: pack, offset: offset), size: size) }
    }

    /// The columns `row(_:)` reads, in its order.
    private static let rowColumns = "id, algo, digest, size, pack, offset"

    private static func row(_ statement: SQLiteStatement) -> Row {
        Row(id: statement.int64(0), algo: statement.int64(1), digest: statement.bytes(2), size: statement.int64(3),
            pack: statement.int64(4), offset: statement.int64(5))
    }

    private func lookup(_ key: BlockKey) throws -> Row? {
        let statement = try db.statement("SELECT \(Self.rowColumns) FROM entries WHERE segment = ? AND block = ?")
        try statement.bind(1, key.segment.bytes).bind(2, Int64(key.index))
        guard try statement.step() else { return nil }
        return Self.row(statement)
    }

    /// Inserts one verified entry (inside a transaction). The file is written before the row.
    private func insertOne(_ item: BlockInsertion, extraTags: [[UInt8]], anonymous: Bool) throws -> InsertOutcome {
        let size = Int64(item.bytes.count)
        guard size > 0, item.bytes.count <= item.digest.function.maximumEntryLength else { return .refused(.invalidLength) }
        let code = item.digest.function.storageCode
        var tags = extraTags
        if let tag = item.tag { tags.append(tag.bytes) }
        if let existing = try lookup(item.key) {
            guard existing.algo == code, existing.digest == item.digest.bytes, existing.size == size else {
                return .refused(.conflictingDigest)
            }
            try addTags(tags, anonymous: anonymous, entry: existing.id)
            tick += 1
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
            "INSERT INTO entries(segment, block, algo, digest, size, used, anonymous, pack, offset) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
        try insert.bind(1, item.key.segment.bytes).bind(2, Int64(item.key.index)).bind(3, code)
            .bind(4, item.digest.bytes).bind(5, size).bind(6, tick).bind(7, anonymous ? 1 : 0)
            .bind(8, location.pack).bind(9, location.offset)
        try insert.run()
        let id = db.lastInsertRowID
        try addTags(tags, anonymous: false, entry: id)
        bytes += size
        entries += 1
        return .stored
    }

    private func addTags(_ tags: [[UInt8]], anonymous: Bool, entry: Int64) throws {
        for tag in tags {
            try db.statement("INSERT OR IGNORE INTO entry_tags(tag, entry) VALUES (?, ?)").bind(1, tag).bind(2, entry).run()
        }
        if anonymous {
            try db.statement("UPDATE entries SET anonymous = 1 WHERE id = ?").bind(1, entry).run()
        }
    }

    private func deleteEntry(_ id: Int64, size: Int64) throws {
        try db.statement("DELETE FROM entry_tags WHERE entry = ?").bind(1, id).run()
        try db.statement("DELETE FROM entries WHERE id = ?").bind(1, id).run()
        pendingTouches[id] = nil
        bytes -= size
        entries -= 1
    }

    /// Evicts least recently used entries until the bytes fit; returns where their bytes were.
    private func evictPastCapacity() throws -> [Stored] {
        var names: [Stored] = []
        while bytes > capacity {
            // As many rows as 64 KiB entries would free the excess (usually one per block just
            // stored), not a fixed batch: the rows not needed would be read for nothing.
            let wanted = min(Int64(Self.evictionBatch), (bytes - capacity + 65_535) / 65_536)
            let select = try db.statement("SELECT \(Self.rowColumns) FROM entries ORDER BY used LIMIT ?")
            try select.bind(1, max(wanted, 1))
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
        for (id, used) in pendingTouches {
            update.reset()
            try update.bind(1, used).bind(2, id)
            try update.run()
        }
        pendingTouches = [:]
    }

    // MARK: - Private: staging

    private func stageOne(key: BlockKey, digest: BlockDigest, length: Int, offset: Int, bytes piece: [UInt8], tag: ContentTag?) throws
        -> StageOutcome
    {
        let code = digest.function.storageCode
        if let existing = try lookup(key) {
            guard existing.algo == code, existing.digest == digest.bytes, existing.size == Int64(length) else {
                return .refused(.conflictingDigest)
            }
            try addTags(tag.map { [$0.bytes] } ?? [], anonymous: tag == nil, entry: existing.id)
            return .alreadyPresent
        }
        tick += 1
        let stagedID: Int64
        let find = try db.statement("SELECT id, algo, digest, size FROM staged WHERE segment = ? AND block = ?")
        try find.bind(1, key.segment.bytes).bind(2, Int64(key.index))
        if try find.step() {
            stagedID = find.int64(0)
            guard find.int64(1) == code, find.bytes(2) == digest.bytes, find.int64(3) == Int64(length) else {
                return .refused(.conflictingDigest)
            }
            try db.statement("UPDATE staged SET used = ? WHERE id = ?").bind(1, tick).bind(2, stagedID).run()
        } else {
            let insert = try db.statement("INSERT INTO staged(segment, block, algo, digest, size, used) VALUES (?, ?, ?, ?, ?, ?)")
            try insert.bind(1, key.segment.bytes).bind(2, Int64(key.index)).bind(3, code).bind(4, digest.bytes)
                .bind(5, Int64(length)).bind(6, tick)
            try insert.run()
            stagedID = db.lastInsertRowID
        }
        if let tag {
            try db.statement("INSERT OR IGNORE INTO staged_tags(tag, staged) VALUES (?, ?)").bind(1, tag.bytes).bind(2, stagedID).run()
        } else {
            try db.statement("UPDATE staged SET anonymous = 1 WHERE id = ?").bind(1, stagedID).run()
        }

        // Assemble what is staged with the new piece (later bytes win where they overlap).
        var buffer = [UInt8](repeating: 0, count: length)
        var covered = CoveredRanges()
        var before = 0
        let pieces = try db.statement("SELECT offset, data FROM staged_pieces WHERE staged = ? ORDER BY offset").bind(1, stagedID)
        while try pieces.step() {
            let start = pieces.int64(0)
            let data = pieces.bytes(1)
            // A piece that does not fit was not written by this code: ignore it.
            guard start >= 0, start <= Int64(length), data.count <= length - Int(start), !data.isEmpty else { continue }
            buffer.replaceSubrange(Int(start)..<Int(start) + data.count, with: data)
            covered.add(Int(start)..<Int(start) + data.count)
            before += data.count
        }
        buffer.replaceSubrange(offset..<offset + piece.count, with: piece)
        covered.add(offset..<offset + piece.count)

        if covered.ranges == [0..<length] {
            let tags = try stagedTags(stagedID)
            let anonymous = try db.statement("SELECT anonymous FROM staged WHERE id = ?").bind(1, stagedID)
            let wasAnonymous = try anonymous.step() && anonymous.int64(0) != 0
            try deleteStaged(stagedID)
            guard EntryHasher.matches(buffer, digest) else {
                stats.update { $0.rejectedOnEntry += 1 }
                return .refused(.digestMismatch)
            }
            let item = BlockInsertion(key: key, digest: digest, bytes: buffer, tag: nil)
            let outcome = try insertOne(item, extraTags: tags, anonymous: wasAnonymous)
            switch outcome {
            case .stored, .alreadyPresent: return .stored
            case .refused(let why): return .refused(why)
            }
        }
        // Rewrite the pieces as the merged runs.
        try db.statement("DELETE FROM staged_pieces WHERE staged = ?").bind(1, stagedID).run()
        var after = 0
        for range in covered.ranges {
            try db.statement("INSERT INTO staged_pieces(staged, offset, data) VALUES (?, ?, ?)")
                .bind(1, stagedID).bind(2, Int64(range.lowerBound)).bind(3, Array(buffer[range])).run()
            after += range.count
        }
        stagedBytes += Int64(after - before)
        return .staged(coveredBytes: after)
    }

    private func stagedTags(_ id: Int64) throws -> [[UInt8]] {
        var tags: [[UInt8]] = []
        let select = try db.statement("SELECT tag FROM staged_tags WHERE staged = ?").bind(1, id)
        while try select.step() { tags.append(select.bytes(0)) }
        return tags
    }

    private func deleteStaged(_ id: Int64) throws {
        let size = try db.statement("SELECT COALESCE(SUM(length(data)), 0) FROM staged_pieces WHERE staged = ?").bind(1, id)
        if try size.step() { stagedBytes -= size.int64(0) }
        try db.statement("DELETE FROM staged_pieces WHERE staged = ?").bind(1, id).run()
        try db.statement("DELETE FROM staged_tags WHERE staged = ?").bind(1, id).run()
        try db.statement("DELETE FROM staged WHERE id = ?").bind(1, id).run()
    }

    private func evictStagingPastCapacity() throws {
        while stagedBytes > stagingCapacity {
            let oldest = try db.statement("SELECT id FROM staged ORDER BY used LIMIT 1")
            guard try oldest.step() else { break }
            try deleteStaged(oldest.int64(0))
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
        let staged = try db.statement("SELECT COALESCE(SUM(length(data)), 0) FROM staged_pieces")
        if try staged.step() { stagedBytes = staged.int64(0) }
        let stagedTick = try db.statement("SELECT COALESCE(MAX(used), 0) FROM staged")
        if try stagedTick.step() { tick = max(tick, stagedTick.int64(0)) }
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
        for table in ["entries", "entry_tags", "staged", "staged_tags", "staged_pieces"] {
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
