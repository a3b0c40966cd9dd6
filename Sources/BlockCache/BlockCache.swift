import Dispatch
import Synchronization

/// One persistent, verified, bounded cache of V1 blocks and V2 segments for the whole service.
///
/// An entry is identified by segment ID (HoHoDk), block index, hash function, digest and length:
/// identical data under different content is stored once, and whoever names a segment with other
/// block hashes makes other entries, never takes the place of the real ones. An entry is readable
/// only after its bytes hashed to the digest the caller gave; every read hashes them again and
/// compares with the digest the reader expects, and bytes that changed on disk are dropped and
/// reported as a miss (`corruptOnRead`).
///
/// Principals: every add names the principal it is for, which then holds the entry (under its
/// tag) and is charged its length; flushes and fair eviction act on one principal's holds, and an
/// entry goes when no holder is left (`CacheStore`). Reads are by content, for anyone who names
/// the digest.
///
/// Threads: every call is `async` and returns at once to its caller's executor; SQLite and file
/// I/O run on the cache's own serial I/O queue, and hashing on its own concurrent verify queue,
/// never on the caller's thread (a socket worker, say).
///
/// Layout on disk (in `configuration.directory`): `index.sqlite` (WAL) holds the entries (with
/// where their bytes are), tags, recency and the staged pieces of incomplete entries; `packs/`
/// holds the bytes, appended to a few large files before their rows commit (`PackFileStore`).
///
/// One process, one open cache per folder: `open` takes SQLite's lock and holds it until
/// `close`; a second `open` of the same folder fails after a 5 s busy timeout.
///
/// Durability: the cache never calls fsync on pack files, and SQLite runs `synchronous=NORMAL`
/// (it syncs at WAL checkpoints only). A kill -9 loses nothing committed: the page cache
/// survives the process. A power cut or kernel crash may lose the last commits and leave rows
/// whose bytes are zeros or a prefix; every read hashes the bytes, so such an entry is a miss
/// (counted in `corruptOnRead` and dropped), never served. The cost of more would be large for a
/// cache whose every entry can be fetched again: on the machine this was measured on, writing
/// 64 KiB files ran at about 2,250 MiB/s, and with an fdatasync each at about 305 MiB/s.
public final class BlockCache: Sendable {
    // MARK: - Properties

    private let io = DispatchQueue(label: "BlockCache.io")
    private let verify = DispatchQueue(label: "BlockCache.verify", attributes: .concurrent)
    private let state: StoreBox
    private let stats: StatisticsBox
    /// The configuration the cache was opened with.
    public let configuration: BlockCacheConfiguration

    // MARK: - Init

    private init(configuration: BlockCacheConfiguration, store: CacheStore, stats: StatisticsBox) {
        self.configuration = configuration
        self.state = StoreBox(store)
        self.stats = stats
    }

    /// Opens (or creates) the cache in `configuration.directory`, on a queue of its own.
    /// - Throws: `BlockCacheOpenError` when the folder or the database cannot be opened.
    public static func open(_ configuration: BlockCacheConfiguration) async throws -> BlockCache {
        let stats = StatisticsBox()
        let opener = DispatchQueue(label: "BlockCache.open")
        let opened: Result<UncheckedSend<CacheStore>, BlockCacheOpenError> = await withCheckedContinuation { continuation in
            opener.async {
                do {
                    let store = try CacheStore(configuration: configuration, stats: stats)
                    continuation.resume(returning: .success(UncheckedSend(store)))
                } catch {
                    continuation.resume(returning: .failure(BlockCacheOpenError(description: "\(error)")))
                }
            }
        }
        return BlockCache(configuration: configuration, store: try opened.get().value, stats: stats)
    }

    // MARK: - API

    /// Verifies `bytes` against `digest` and stores them under `key`, held by `principal` under `tag`.
    public func insert(_ key: BlockKey, digest: BlockDigest, bytes: [UInt8], tag: ContentTag?, by principal: String) async
        -> InsertOutcome
    {
        await insert([BlockInsertion(key: key, digest: digest, bytes: bytes, tag: tag)], by: principal)[0]
    }

    /// Verifies each insertion and stores those that pass, held by `principal`, in one
    /// transaction. Outcomes are in the order of `items`.
    ///
    /// Hashing and writing overlap: the items are hashed on the verify queue in chunks of
    /// `pipelineChunk` (each chunk over every core), while the I/O queue writes each chunk as soon
    /// as its verdicts are in, and then resumes the caller. Nothing is written before it verified.
    public func insert(_ items: [BlockInsertion], by principal: String) async -> [InsertOutcome] {
        guard !items.isEmpty else { return [] }
        let verdicts = Verdicts(count: items.count)
        let chunks = stride(from: 0, to: items.count, by: Self.pipelineChunk).map { $0..<min($0 + Self.pipelineChunk, items.count) }
        let ready = chunks.map { _ in DispatchGroup() }
        for (range, group) in zip(chunks, ready) {
            group.enter()
            verify.async { [stats] in
                Self.check(items, range, into: verdicts)
                let failed = range.filter { !verdicts.buffer[$0] }.count
                if failed > 0 { stats.update { $0.rejectedOnEntry += Int64(failed) } }
                group.leave()
            }
        }
        return await withCheckedContinuation { continuation in
            io.async { [state] in
                let admit = { (index: Int) -> Bool in
                    ready[index / Self.pipelineChunk].wait()
                    return verdicts.buffer[index]
                }
                guard let store = state.store else {
                    for group in ready { group.wait() }
                    continuation.resume(returning: items.map { _ in .refused(.closed) })
                    return
                }
                var outcomes = store.insert(items, principal: principal, admit: admit)
                // Every chunk is in, also when the transaction stopped early.
                for group in ready { group.wait() }
                for index in outcomes.indices where !verdicts.buffer[index] { outcomes[index] = .refused(.digestMismatch) }
                continuation.resume(returning: outcomes)
            }
        }
    }

    /// Items hashed per step of an insert's pipeline.
    static let pipelineChunk = 4

    /// Sets each verdict of `range`: whether the item's bytes hash to its digest (several items
    /// in parallel).
    private static func check(_ items: [BlockInsertion], _ range: Range<Int>, into verdicts: Verdicts) {
        @Sendable func passes(_ item: BlockInsertion) -> Bool {
            item.bytes.count <= item.digest.function.maximumEntryLength && EntryHasher.matches(item.bytes, item.digest)
        }
        guard range.count > 1 else {
            for index in range { verdicts.buffer[index] = passes(items[index]) }
            return
        }
        DispatchQueue.concurrentPerform(iterations: range.count) { offset in
            verdicts.buffer[range.lowerBound + offset] = passes(items[range.lowerBound + offset])
        }
    }

    /// Adds a piece of an entry whose bytes arrive in parts (a V2 segment, or a V1 block split
    /// across AddData calls). Pieces are kept unverified and are never readable; the piece that
    /// completes `length` bytes makes the cache verify the whole against `digest` and either store
    /// it or drop every piece. Pieces are kept per principal: each principal's pieces complete
    /// (and are verified) on their own, so one principal's bad pieces never spoil another's entry.
    /// - Parameters:
    ///   - offset: where `bytes` go inside the entry (0 ..< length).
    ///   - length: the entry's full length (the segment's or the block's).
    ///   - principal: who sends the piece, and holds the entry once stored.
    public func stage(
        _ key: BlockKey, digest: BlockDigest, length: Int, offset: Int, bytes: [UInt8], tag: ContentTag?, by principal: String
    ) async -> StageOutcome {
        await onIO { store in
            store?.stage(key: key, digest: digest, length: length, offset: offset, bytes: bytes, tag: tag, principal: principal)
        } ?? .refused(.closed)
    }

    /// Disjoint runs one staged entry may be in at most (pieces past it are `.tooFragmented`).
    public static var maxStagedRuns: Int { CacheStore.maxStagedRuns }
    /// What the staging bound counts for each staged run's row besides its bytes.
    public static var stagedRunOverhead: Int64 { CacheStore.stagedRunOverhead }

    /// The verified bytes of `key`, or nil when it is not cached under `digest` or its bytes no
    /// longer hash to it (the entry is then dropped and counted in `corruptOnRead`): a
    /// `readLeading` of one entry.
    public func read(_ key: BlockKey, digest: BlockDigest) async -> [UInt8]? {
        let bytes = await readLeading([(key, digest)])
        return bytes.isEmpty ? nil : bytes
    }

    /// Reads the entries of `items`, in order, in one trip through the I/O and verify queues: the
    /// bytes of the leading ones that are cached and intact, one after another in one buffer, up
    /// to the first that is not (a contiguous read needs nothing past a miss, so nothing past it is
    /// loaded). The I/O queue only looks them up; the verify queue reads each entry from its pack,
    /// through descriptors of its own, and verifies it as `read(_:digest:)` does, several at once,
    /// in place. A corrupt or cut-short one is dropped and ends the run.
    public func readLeading(_ items: [(key: BlockKey, digest: BlockDigest)]) async -> [UInt8] {
        guard !items.isEmpty else { return [] }
        return await withCheckedContinuation { continuation in
            io.async { [io, verify, state, stats] in
                guard let plan = state.store?.planRun(items), !plan.ids.isEmpty else {
                    stats.update { $0.misses += 1 }
                    continuation.resume(returning: [])
                    return
                }
                let stoppedByMiss = plan.ids.count < items.count
                verify.async {
                    let count = plan.ids.count
                    let starts = plan.sizes.reduce(into: [0]) { $0.append($0[$0.count - 1] + $1) }
                    let verdicts = Verdicts(count: count)
                    var bytes = [UInt8](unsafeUninitializedCapacity: starts[count]) { buffer, initialized in
                        guard let base = buffer.baseAddress else { return }
                        let shared = RunBuffer(base)
                        let load: @Sendable (Int) -> Void = { index in
                            let entry = shared.base + starts[index]
                            let size = plan.sizes[index]
                            let got = PackFileStore.read(
                                plan.descriptors[plan.descriptorOf[index]], at: plan.offsets[index], count: size, into: entry)
                            if got < size { (entry + got).initialize(repeating: 0, count: size - got) }
                            verdicts.buffer[index] = got == size
                                && EntryHasher.matches(UnsafeRawBufferPointer(start: entry, count: size), items[index].digest)
                        }
                        if count == 1 { load(0) } else { DispatchQueue.concurrentPerform(iterations: count, execute: load) }
                        initialized = starts[count]
                    }
                    PackFileStore.closeDescriptors(plan.descriptors)
                    let intact = verdicts.buffer.firstIndex(of: false) ?? count
                    stats.update { stats in
                        stats.hits += Int64(intact)
                        if intact < count || stoppedByMiss { stats.misses += 1 }
                    }
                    let ids = plan.ids
                    guard intact < count else {
                        // All intact: answered at once, the recency recorded after.
                        continuation.resume(returning: bytes)
                        io.async { for id in ids { state.store?.touch(id) } }
                        return
                    }
                    bytes.removeLast(bytes.count - starts[intact])
                    let kept = bytes
                    // A corrupt entry is dropped before the caller is answered.
                    io.async {
                        for id in ids[0..<intact] { state.store?.touch(id) }
                        for index in intact..<count where !verdicts.buffer[index] { state.store?.dropCorrupt(id: ids[index]) }
                        continuation.resume(returning: kept)
                    }
                }
            }
        }
    }

    /// Whether `key` has a readable entry under `digest`, from the index alone (the bytes are
    /// verified only by `read`, which may still miss).
    public func contains(_ key: BlockKey, digest: BlockDigest) async -> Bool {
        await sizes(of: [(key, digest)])[0] != nil
    }

    /// The length of each entry cached under its key and digest, nil where not, from the index
    /// alone, in one hop.
    public func sizes(of items: [(key: BlockKey, digest: BlockDigest)]) async -> [Int?] {
        await onIO { store in store?.sizes(items) } ?? items.map { _ in nil }
    }

    /// Removes `principal`'s pairs (`principal`, `tag`): what it added under `tag` alone (and not
    /// untagged) it no longer holds, and entries (and staged pieces) left with no holder are
    /// deleted. Other principals' pairs, whatever their tags, are untouched. Returns the readable
    /// entries `principal` let go of.
    public func flush(tag: ContentTag, by principal: String) async -> Int {
        await onIO { store in store?.flush(tag: tag, principal: principal) } ?? 0
    }

    /// What each principal is charged now (principals charged nothing are left out).
    public func usage() async -> [String: PrincipalCacheUsage] {
        await onIO { store in store?.usage() } ?? [:]
    }

    /// Where each readable entry's bytes are on disk, for tests that change them.
    package func locations() async -> [(path: String, offset: Int64, length: Int64)] {
        await onIO { store in store?.locations() ?? [] }
    }

    /// Where the bytes of an entry of `key` (under any digest) are on disk, for tests that change
    /// them or look for them.
    package func location(of key: BlockKey) async -> (path: String, offset: Int64, length: Int64)? {
        await onIO { store in store?.location(of: key) }
    }

    /// The counters, without touching the disk.
    public func statistics() -> BlockCacheStatistics {
        stats.snapshot()
    }

    /// Writes what is pending and closes the database; later calls miss or are refused `.closed`.
    public func close() async {
        await onIO { [state] store in
            store?.close()
            state.store = nil
        }
    }

    // MARK: - Private

    private func onIO<T: Sendable>(_ body: @escaping @Sendable (CacheStore?) -> T) async -> T {
        await withCheckedContinuation { continuation in
            io.async { [state] in continuation.resume(returning: body(state.store)) }
        }
    }
}

/// The store, touched only on the cache's I/O queue.
///
/// Safety (`@unchecked Sendable`): `store` is read and written only inside blocks submitted to
/// `BlockCache.io`, a serial queue, so no two threads ever touch it (or the store) at once.
private final class StoreBox: @unchecked Sendable {
    var store: CacheStore?

    init(_ store: CacheStore) { self.store = store }
}

/// One verdict per insertion, written on the verify queue and read on the I/O queue.
///
/// Safety (`@unchecked Sendable`): element `i` is written by exactly one task (one iteration of
/// one chunk's check), and read only after that chunk's `DispatchGroup` was left and waited on,
/// which orders the write before the read. The buffer is freed when the last reference goes.
private final class Verdicts: @unchecked Sendable {
    let buffer: UnsafeMutableBufferPointer<Bool>

    init(count: Int) {
        buffer = .allocate(capacity: count)
        buffer.initialize(repeating: false)
    }

    deinit { buffer.deallocate() }
}

/// The start of a run's buffer, shared by the iterations that fill it.
///
/// Safety (`@unchecked Sendable`): each iteration writes (and then hashes) only its own entry's
/// range of the buffer, the ranges do not overlap, and the buffer outlives them (it is filled
/// inside `Array(unsafeUninitializedCapacity:)`, which returns after `concurrentPerform` has).
private struct RunBuffer: @unchecked Sendable {
    let base: UnsafeMutablePointer<UInt8>
    init(_ base: UnsafeMutablePointer<UInt8>) { self.base = base }
}

/// Moves a value created on one queue to another.
///
/// Safety (`@unchecked Sendable`): used once, to hand the freshly opened store from the opening
/// queue to the cache, after which only the I/O queue touches it.
private struct UncheckedSend<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// The counters, behind a mutex.
final class StatisticsBox: Sendable {
    private let value = Mutex(BlockCacheStatistics())

    func update(_ body: (inout BlockCacheStatistics) -> Void) {
        value.withLock { body(&$0) }
    }

    func snapshot() -> BlockCacheStatistics {
        value.withLock { $0 }
    }
}
