import BlockCache
import PCCRC
import Synchronization

/// The receiving end of one streamed PeerDistClientAddData: the body's bytes go in with `write`, in
/// order, and `finish` ends the operation. Bytes are gathered up to a window (`appendWindowBytes`)
/// and stored cut at entry boundaries (whole blocks or segments are inserted; only the last, partial
/// one of the body is staged). Up to `maxStoring` windows are stored (hashed and written by the
/// cache) while the next is received, so memory stays within `heldBytes` whatever the body's
/// length, and the operation ends only once every window is stored. Before the retrieval's content information is
/// complete the bytes are kept (bounded) instead.
///
/// `write` throws once the operation has ended (cancelled, closed, invalidated, past its bound, or
/// out of bounds at its start): the caller stops feeding and answers with the operation's state.
public final class AddDataFeed: Sendable {
    private struct State {
        /// Absolute offset of `carry`'s first byte.
        var position: UInt64
        var carry: [UInt8] = []
        var accepted: UInt64 = 0
        /// The stores of earlier windows, oldest first, while they run; their bytes accepted are
        /// added when they are awaited (the oldest once `maxStoring` run, all at the end).
        var storing: [Task<UInt64, Never>] = []
        /// A natural end was issued already (4061 at the start, or 1816 past the kept-data bound).
        var ended = false
    }

    /// The operation, for the answer.
    public let started: StartedOperation
    private let engine: PeerDistEngine
    private let instance: String
    private let retrieval: String
    private let serial: UInt64
    private let window: Int
    /// The AddData's offset (the operation's `offset` when it ends).
    private let startOffset: UInt64
    private let state: Mutex<State>

    init(
        engine: PeerDistEngine, instance: String, retrieval: String, serial: UInt64, offset: UInt64, ended: Bool,
        started: StartedOperation
    ) {
        self.engine = engine
        self.instance = instance
        self.retrieval = retrieval
        self.serial = serial
        self.started = started
        startOffset = offset
        window = Self.window(engine.limits)
        state = Mutex(State(position: offset, ended: ended))
    }

    /// Room past a window in a gathering buffer: the body chunk that fills a window usually
    /// overshoots it, and the buffer should not grow (and be copied) for it.
    static let slack = 256 << 10
    /// Windows stored at once while the next is received (each is hashed over every core and
    /// written by the cache's I/O queue; a second keeps both busy across the hand-offs).
    static let maxStoring = 2

    /// The bytes a window gathers: an append window, at least a V2 segment (stored whole).
    static func window(_ limits: EngineLimits) -> Int {
        max(limits.appendWindowBytes, Int(ContentInformationV2.maximumSegmentLength))
    }

    /// The most one feed holds at once: the window it gathers (with its slack) and the windows
    /// it stores. An AddData reserves this much of its principal's upload bytes in flight.
    static func heldBytes(_ limits: EngineLimits) -> Int {
        (1 + maxStoring) * window(limits) + slack
    }

    /// Takes the next body bytes; stores (or keeps) them once a window has gathered.
    /// - Throws: The operation's end (`EngineError`) once it has ended.
    public func write(_ chunk: [UInt8]) async throws(EngineError) {
        try engine.checkFeedPending(instance: instance, serial: serial)
        let full = state.withLock { state -> Bool in
            // Ended (4061 held by a fault delay, say): the bytes are not kept.
            guard !state.ended else { return false }
            if state.carry.isEmpty, state.carry.capacity < window { state.carry.reserveCapacity(window + Self.slack) }
            state.carry.append(contentsOf: chunk)
            return state.carry.count >= window
        }
        if full { try await flush(final: false) }
    }

    /// The body is in: stores what is left and ends the operation with the bytes accepted.
    public func finish() async {
        do throws(EngineError) {
            try await flush(final: true)
        } catch {
            return
        }
        let (accepted, ended) = state.withLock { ($0.accepted, $0.ended) }
        guard !ended else { return }
        engine.finishNaturally(
            instance: instance, serial: serial, .outcome(.finished(.success, bytes: accepted, offset: startOffset)))
    }

    /// The body failed (the client went away): the operation ends aborted, nothing more is stored.
    public func abort() async {
        await engine.abortOperation(
            instance: instance, serial: serial, result: .operationAborted, detail: "the request body failed")
    }

    /// Stores (or keeps) the gathered bytes: all of them when `final` (and waits for every store),
    /// else up to the last entry boundary (the store left running, up to `maxStoring` at once).
    private func flush(final: Bool) async throws(EngineError) {
        while let oldest = state.withLock({ state in
            state.storing.count >= (final ? 1 : Self.maxStoring) ? state.storing.removeFirst() : nil
        }) {
            let accepted = await oldest.value
            state.withLock { $0.accepted += accepted }
        }
        let (position, carry, ended) = state.withLock { ($0.position, $0.carry, $0.ended) }
        guard !ended, !carry.isEmpty else { return }
        switch try engine.feedTarget(instance: instance, retrieval: retrieval, serial: serial) {
        case .keep:
            do throws(EngineError) {
                try engine.keepPending(instance: instance, retrieval: retrieval, serial: serial, offset: position, bytes: carry)
            } catch {
                state.withLock { $0.ended = true }
                throw error
            }
            state.withLock { state in
                state.carry.removeFirst(carry.count)
                state.position += UInt64(carry.count)
                state.accepted += UInt64(carry.count)
            }
        case .store(let layout, let hold):
            let end = position + UInt64(carry.count)
            let cut = final || end >= layout.contentEnd ? end : max(position, layout.boundary(atOrBefore: end))
            guard cut > position else { return }
            let count = Int(cut - position)
            // The window is stored from the gathered buffer itself; the bytes past the cut start
            // the next one, in a buffer sized for a window.
            let window = carry[0..<count]
            state.withLock { state in
                var next: [UInt8] = []
                if count < carry.count {
                    next.reserveCapacity(self.window + Self.slack)
                    next.append(contentsOf: carry[count...])
                }
                state.carry = next
                state.position = cut
            }
            let engine = self.engine
            let storing = Task { await engine.store([(position, window)], layout: layout, for: hold) }
            if final {
                let accepted = await storing.value
                state.withLock { $0.accepted += accepted }
            } else {
                state.withLock { $0.storing.append(storing) }
            }
        }
    }
}

