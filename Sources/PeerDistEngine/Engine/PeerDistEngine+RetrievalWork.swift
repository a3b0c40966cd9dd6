import BlockCache
import PCCRC

/// Whom a retrieval's data is cached for: its principal (who holds and is charged for the
/// entries) and its content tag (what a flush of that principal names).
struct CacheHold: Sendable {
    let principal: String
    let tag: ContentTag
}

/// The work of retrieval operations, in tasks, outside the engine lock: parsing content
/// information, storing AddData into the block cache, and reads (with their waits for AddData).
/// Each ends its operation through `finishNaturally`, which does nothing when an abort won.
extension PeerDistEngine {
    /// Sizes are asked of the cache this many keys at a time.
    static let cacheScanBatch = 256

    // MARK: - CompleteContentInformation

    func runComplete(instance: String, retrieval: String, serial: UInt64, bytes: [UInt8]) async {
        let parsed: ParsedContentInformation
        do throws(PCCRCError) {
            parsed = try ContentInformation.parse(bytes)
        } catch {
            let code: Win32Error = error == .versionUnsupported ? .contentInfoVersionUnsupported : .cannotParseContentInfo
            finishNaturally(instance: instance, serial: serial, .failed(code))
            return
        }
        let layout: RetrievalLayout
        switch RetrievalLayout.make(parsed) {
        case .success(let made): layout = made
        case .failure(let error):
            finishNaturally(instance: instance, serial: serial, .failed(error.code))
            return
        }
        // The data AddData kept meanwhile is verified into the cache before the complete ends, so
        // that it is readable as soon as reads may start.
        let kept = state.withLock { state -> ([(UInt64, ArraySlice<UInt8>)], CacheHold?) in
            guard let record = state.instances[instance], let r = record.retrievals[retrieval],
                case .completing(let s) = r.contentInfo, s == serial
            else { return ([], nil) }
            defer { record.recount(r) }
            return (r.takePendingData(), CacheHold(principal: record.principal, tag: r.tag))
        }
        if let hold = kept.1, !kept.0.isEmpty { _ = await store(kept.0, layout: layout, for: hold) }
        finishNaturally(instance: instance, serial: serial, .retrievalCompleted(layout, contentInfoBytes: UInt64(bytes.count)))
    }

    // MARK: - AddData

    /// Verifies and stores the entries `pieces` cover (whole ones inserted in one transaction,
    /// partial ones staged), then wakes the reads waiting for what was stored. Whole entries are
    /// handed to the cache as slices of the pieces, not copied. The entries are held by the
    /// retrieval's principal, under its tag.
    /// - Returns: The bytes accepted (those before the content's end).
    func store(_ pieces: [(UInt64, ArraySlice<UInt8>)], layout: RetrievalLayout, for hold: CacheHold) async -> UInt64 {
        guard let cache = blockCache else { return 0 }
        var accepted: UInt64 = 0
        var insertions: [BlockInsertion] = []
        var stages: [(entry: RetrievalLayout.Entry, offset: Int, bytes: [UInt8])] = []
        for (offset, bytes) in pieces where offset < layout.contentEnd {
            let (sum, overflow) = offset.addingReportingOverflow(UInt64(bytes.count))
            let end = min(overflow ? UInt64.max : sum, layout.contentEnd)
            accepted += end - offset
            var index = layout.firstEntry(endingAfter: offset)
            while index < layout.entries.count, layout.entries[index].start < end {
                let entry = layout.entries[index]
                let from = max(entry.start, offset)
                let to = min(entry.end, end)
                let slice = bytes[(bytes.startIndex + Int(from - offset))..<(bytes.startIndex + Int(to - offset))]
                if from == entry.start, to == entry.end {
                    insertions.append(BlockInsertion(key: entry.key, digest: entry.digest, bytes: slice, tag: hold.tag))
                } else {
                    stages.append((entry, Int(from - entry.start), Array(slice)))
                }
                index += 1
            }
        }
        var stored: [BlockKey] = []
        let outcomes = await cache.insert(insertions, by: hold.principal)
        for (item, outcome) in zip(insertions, outcomes) where outcome == .stored || outcome == .alreadyPresent {
            stored.append(item.key)
        }
        for stage in stages {
            let outcome = await cache.stage(
                stage.entry.key, digest: stage.entry.digest, length: stage.entry.length, offset: stage.offset,
                bytes: stage.bytes, tag: hold.tag, by: hold.principal)
            if outcome == .stored || outcome == .alreadyPresent { stored.append(stage.entry.key) }
        }
        if !stored.isEmpty { wakeReaders(waitingFor: stored) }
        return accepted
    }

    /// Wakes the reads (of any instance) waiting for these entries, and moves the cache epoch.
    private func wakeReaders(waitingFor keys: [BlockKey]) {
        let signals = state.withLock { state -> [WakeSignal] in
            state.cacheEpoch &+= 1
            var signals: [WakeSignal] = []
            for key in keys {
                if let waiting = state.readWaiters.removeValue(forKey: key) { signals.append(contentsOf: waiting.values) }
            }
            return signals
        }
        for signal in signals { signal.fire(.data) }
    }

    // MARK: - Reads

    /// A block read, or the stream read at the head of its retrieval's queue.
    func runRead(instance: String, retrieval: String, serial: UInt64) async {
        let setup = state.withLock { state -> (ReadRequest, RetrievalLayout, UInt64)? in
            guard let record = state.instances[instance], let op = record.operations[serial], op.isPending,
                let r = record.retrievals[retrieval], let request = r.reads[serial], let layout = r.layout
            else { return nil }
            return (request, layout, request.mode == .block ? request.offset : r.streamPosition)
        }
        guard let (request, layout, offset) = setup, let cache = blockCache else { return }
        let end = { (outcome: OperationRecord.Outcome) in
            self.finishNaturally(instance: instance, serial: serial, .outcome(outcome))
        }
        guard layout.readRange.contains(offset), let index = layout.entryIndex(containing: offset) else {
            end(.finished(.noMore, offset: offset))
            return
        }
        if request.maxBytes == 0 {
            let count = await contiguousBytes(cache, layout, from: offset)
            end(.finished(.success, bytes: count, offset: offset))
            return
        }
        let key = layout.entries[index].key
        while !request.signal.isAborted {
            let epoch = state.withLock { $0.cacheEpoch }
            let bytes = await readCached(cache, layout, from: offset, maxBytes: request.maxBytes)
            if !bytes.isEmpty {
                end(.finished(.success, bytes: UInt64(bytes.count), offset: offset, buffer: bytes))
                return
            }
            guard request.timeout != nil else {
                let missing = await missingRange(cache, layout, from: offset)
                end(.finished(.missingData, bytes: missing.upperBound - missing.lowerBound, offset: missing.lowerBound))
                return
            }
            let registered = state.withLock { state -> Bool in
                guard state.cacheEpoch == epoch else { return false }
                state.readWaiters[key, default: [:]][serial] = request.signal
                return true
            }
            let reason = registered ? await request.signal.wait() : .data
            if registered {
                state.withLock { state in
                    state.readWaiters[key]?.removeValue(forKey: serial)
                    if state.readWaiters[key]?.isEmpty == true { state.readWaiters.removeValue(forKey: key) }
                }
            }
            switch reason {
            case .aborted:
                return
            case .data:
                continue
            case .timeout:
                let missing = await missingRange(cache, layout, from: offset)
                end(.finished(.timeout, bytes: missing.upperBound - missing.lowerBound, offset: missing.lowerBound))
                return
            }
        }
    }

    /// The verified cached bytes from `offset` on, across entries, up to `maxBytes` (empty on a miss
    /// at `offset`).
    private func readCached(_ cache: BlockCache, _ layout: RetrievalLayout, from offset: UInt64, maxBytes: Int) async
        -> [UInt8]
    {
        // The contiguous entries the read may reach, read from the cache in one trip.
        let upper = min(layout.readRange.upperBound, offset.addingReportingOverflow(UInt64(maxBytes)).overflow
            ? UInt64.max : offset + UInt64(maxBytes))
        guard offset < upper, let first = layout.entryIndex(containing: offset) else { return [] }
        var last = first
        while last + 1 < layout.entries.count, layout.entries[last].end < upper,
            layout.entries[last + 1].start == layout.entries[last].end
        {
            last += 1
        }
        let wanted = layout.entries[first...last]
        // The intact leading entries, one after another from the first's start.
        var bytes = await cache.readLeading(wanted.map { ($0.key, $0.digest) })
        let skip = Int(offset - layout.entries[first].start)
        let take = min(bytes.count - skip, Int(upper - offset))
        guard take > 0 else { return [] }
        guard skip == 0 else { return Array(bytes[skip..<(skip + take)]) }
        bytes.removeLast(bytes.count - take)
        return bytes
    }

    /// How many contiguous bytes the cache holds from `offset` (its index only), within the range.
    private func contiguousBytes(_ cache: BlockCache, _ layout: RetrievalLayout, from offset: UInt64) async -> UInt64 {
        var total: UInt64 = 0
        var index = layout.firstEntry(endingAfter: offset)
        let upper = layout.readRange.upperBound
        while index < layout.entries.count {
            let batch = layout.entries[index..<min(index + Self.cacheScanBatch, layout.entries.count)]
            let sizes = await cache.sizes(of: batch.map { ($0.key, $0.digest) })
            for (entry, size) in zip(batch, sizes) {
                guard size == entry.length, entry.start < upper else { return total }
                total += min(entry.end, upper) - max(entry.start, offset)
            }
            index += batch.count
        }
        return total
    }

    /// The missing range from `offset` (which missed): up to the next cached entry, clipped to the
    /// content information's range.
    private func missingRange(_ cache: BlockCache, _ layout: RetrievalLayout, from offset: UInt64) async -> Range<UInt64> {
        let upper = layout.readRange.upperBound
        var index = layout.firstEntry(endingAfter: offset)
        guard index < layout.entries.count else { return offset..<max(offset, upper) }
        var missingEnd = min(layout.entries[index].end, upper)
        index += 1
        while index < layout.entries.count, missingEnd < upper {
            let batch = layout.entries[index..<min(index + Self.cacheScanBatch, layout.entries.count)]
            let sizes = await cache.sizes(of: batch.map { ($0.key, $0.digest) })
            for (entry, size) in zip(batch, sizes) {
                if size == entry.length || missingEnd >= upper { return offset..<missingEnd }
                missingEnd = min(entry.end, upper)
            }
            index += batch.count
        }
        return offset..<missingEnd
    }
}
