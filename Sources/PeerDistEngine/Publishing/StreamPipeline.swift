import PCCRC
import DequeModule
import Dispatch
import Synchronization

/// The hashing side of one publication stream: a FIFO of jobs (appends and the complete) in arrival
/// order, drained on the stream's serial hashing queue.
///
/// - Appends are fed by an `AppendSink`; at most `windowBytes` (plus one chunk) wait per append, so
///   no content is ever buffered whole. A writer past the window suspends until the drain catches up.
/// - The drain hashes in slices of `sliceBytes` (64 KiB) and checks for a stop request between them.
/// - The head job's effect is tentative until the engine decides who won the operation's transition:
///   `settle(_:accepted:)` (natural end) keeps or rolls back the bytes; `abort(_:error:)` (a cancel or
///   other abort) rolls back and returns only once the drain has let go of the job.
///
/// Lock order: the engine may call in while holding its lock (`enqueue…`); the pipeline never calls
/// the engine or the clock while holding its own lock.
final class StreamPipeline: Sendable {
    // MARK: - Types

    typealias Report = @Sendable (NaturalEnd) -> Void

    enum JobKind {
        case append(expected: UInt64?)
        case complete
    }

    enum JobPhase {
        /// Not started.
        case queued
        /// Started (the hasher has its bytes tentatively); more input may come.
        case running
        /// Its natural end was reported; waiting for `settle` or `abort`.
        case awaitingDecision
    }

    struct Job {
        let id: UInt64
        let kind: JobKind
        let report: Report
        var chunks: Deque<[UInt8]> = []
        var bufferedBytes = 0
        var receivedBytes: UInt64 = 0
        var hashedBytes: UInt64 = 0
        var inputEnded: Bool
        var failure: EngineError?
        var phase: JobPhase = .queued
        var stopRequested = false
        var spaceWaiters: [UInt64: CheckedContinuation<Result<Void, EngineError>, Never>] = [:]
    }

    struct State {
        /// The running hasher; `nil` only while the drain hashes outside the lock.
        var hasher: PublicationHasher?
        /// The hasher before the head job started (for rolling it back).
        var snapshot: PublicationHasher?
        var committedBytes: UInt64 = 0
        var jobs: Deque<Job> = []
        var drainScheduled = false
        /// The job the drain works on outside the lock.
        var activeJob: UInt64?
        var stopWaiters: [CheckedContinuation<Void, Never>] = []
        /// Why an append ended, for writers that come after (only while its sink lives).
        var terminal: [UInt64: EngineError] = [:]
        var liveSinks: Set<UInt64> = []
        var nextWaiterID: UInt64 = 0
        /// The most body bytes one append has had waiting (for tests of the memory bound).
        var peakBufferedBytes = 0
    }

    enum Step {
        case idle
        case hash(job: UInt64, chunk: [UInt8], hasher: PublicationHasher)
        case finalize(job: UInt64, hasher: PublicationHasher, report: Report)
        case report(Report, NaturalEnd)
    }

    // MARK: - Properties

    /// Stop checks happen at least this often while hashing.
    static let sliceBytes = 64 * 1_024
    /// Bytes hashed before the drain yields its queue to other streams.
    static let drainBudgetBytes = 4 * 1_024 * 1_024

    let queue: DispatchQueue
    let contentLength: UInt64
    let maxLength: UInt64
    let windowBytes: Int
    let state: Mutex<State>

    // MARK: - Init

    /// - Parameters:
    ///   - queue: The stream's serial hashing queue.
    ///   - contentLength: Declared length, 0 = unknown.
    ///   - maxLength: The engine's bound on any content.
    ///   - version: Publication version (1: V1, 2: V1 and V2).
    ///   - hashAlgorithm: The V1 hash.
    ///   - windowBytes: Bytes buffered per append before writers suspend.
    init(queue: DispatchQueue, contentLength: UInt64, maxLength: UInt64, version: Int, hashAlgorithm: V1HashAlgorithm, windowBytes: Int) {
        self.queue = queue
        self.contentLength = contentLength
        self.maxLength = maxLength
        self.windowBytes = max(1, windowBytes)
        var initial = State()
        initial.hasher = PublicationHasher(version: version, algorithm: hashAlgorithm)
        state = Mutex(initial)
    }

    // MARK: - API (engine)

    /// Adds an append job (called under the engine lock, so jobs keep arrival order).
    func enqueueAppend(job id: UInt64, expected: UInt64?, report: @escaping Report) {
        state.withLock { state in
            state.jobs.append(Job(id: id, kind: .append(expected: expected), report: report, inputEnded: false))
            state.liveSinks.insert(id)
        }
    }

    /// Adds a complete job (called under the engine lock).
    func enqueueComplete(job id: UInt64, report: @escaping Report) {
        state.withLock { state in
            state.jobs.append(Job(id: id, kind: .complete, report: report, inputEnded: true))
            scheduleDrainIfNeeded(&state)
        }
    }

    /// The natural end of the head job won: keep its bytes (`accepted`) or roll them back.
    func settle(job id: UInt64, accepted: Bool) {
        let resumes = state.withLock { state -> [@Sendable () -> Void] in
            guard let head = state.jobs.first, head.id == id else { return [] }
            state.jobs.removeFirst()
            if case .append = head.kind {
                if accepted {
                    state.committedBytes += head.hashedBytes
                } else {
                    state.hasher = state.snapshot
                    if state.liveSinks.contains(id) {
                        state.terminal[id] = head.failure ?? EngineError(.invalidParameter, "the append failed")
                    }
                }
            }
            state.snapshot = nil
            scheduleDrainIfNeeded(&state)
            let error = head.failure ?? EngineError(.operationAborted, "the append has ended")
            return head.spaceWaiters.values.map { waiter in { waiter.resume(returning: .failure(error)) } }
        }
        resumes.forEach { $0() }
    }

    /// An abort won the job's operation: roll back its bytes, fail its writers and return once the
    /// drain no longer works on it.
    func abort(job id: UInt64, error: EngineError) async {
        let (mustWait, resumes) = state.withLock { state -> (Bool, [@Sendable () -> Void]) in
            if state.liveSinks.contains(id) { state.terminal[id] = error }
            guard let index = state.jobs.firstIndex(where: { $0.id == id }) else { return (false, []) }
            let waiters = state.jobs[index].spaceWaiters.values
            state.jobs[index].spaceWaiters = [:]
            let resumes: [@Sendable () -> Void] = waiters.map { waiter in { waiter.resume(returning: .failure(error)) } }
            if state.activeJob == id {
                state.jobs[index].stopRequested = true
                return (true, resumes)
            }
            let job = state.jobs.remove(at: index)
            if index == 0, case .append = job.kind, job.phase != .queued {
                state.hasher = state.snapshot
            }
            if index == 0 { state.snapshot = nil }
            scheduleDrainIfNeeded(&state)
            return (false, resumes)
        }
        resumes.forEach { $0() }
        guard mustWait else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            state.withLock { state in
                if state.activeJob == id {
                    state.stopWaiters.append(continuation)
                } else {
                    continuation.resume()
                }
            }
        }
    }

    // MARK: - API (sink)

    /// Queues a body chunk of an append; suspends while the append's window is full.
    func write(job id: UInt64, _ chunk: [UInt8]) async throws(EngineError) {
        let mustWait = try state.withLock { (state: inout State) throws(EngineError) -> Bool in
            if let error = state.terminal[id] { throw error }
            guard let index = state.jobs.firstIndex(where: { $0.id == id }) else {
                throw EngineError(.invalidParameter, "the append has already ended")
            }
            var job = state.jobs[index]
            if let failure = job.failure { throw failure }
            guard !job.inputEnded else { throw EngineError(.invalidParameter, "write after finish") }
            guard !chunk.isEmpty else { return false }
            if case .append(let expected?) = job.kind, job.receivedBytes + UInt64(chunk.count) > expected {
                let failure = EngineError(.invalidParameter, "the body is longer than its declared length \(expected)")
                job.failure = failure
                state.jobs[index] = job
                scheduleDrainIfNeeded(&state)
                throw failure
            }
            job.chunks.append(chunk)
            job.bufferedBytes += chunk.count
            job.receivedBytes += UInt64(chunk.count)
            state.peakBufferedBytes = max(state.peakBufferedBytes, job.bufferedBytes)
            let full = job.bufferedBytes > windowBytes
            state.jobs[index] = job
            scheduleDrainIfNeeded(&state)
            return full
        }
        guard mustWait else { return }
        try await waitForSpace(job: id)
    }

    /// The body of an append ended; fewer bytes than declared fail it with 87.
    func finish(job id: UInt64) {
        state.withLock { state in
            guard let index = state.jobs.firstIndex(where: { $0.id == id }) else { return }
            state.jobs[index].inputEnded = true
            if case .append(let expected?) = state.jobs[index].kind,
                state.jobs[index].receivedBytes != expected, state.jobs[index].failure == nil
            {
                state.jobs[index].failure = EngineError(
                    .invalidParameter,
                    "the body has \(state.jobs[index].receivedBytes) bytes, not its declared length \(expected)")
            }
            scheduleDrainIfNeeded(&state)
        }
    }

    /// The sink of `id` is gone: forget what later writers would have been told.
    func release(job id: UInt64) {
        state.withLock { state in
            state.liveSinks.remove(id)
            state.terminal.removeValue(forKey: id)
        }
    }

    /// The most body bytes one append has had waiting so far.
    var peakBufferedBytes: Int { state.withLock { $0.peakBufferedBytes } }

    // MARK: - Private: writers

    private func waitForSpace(job id: UInt64) async throws(EngineError) {
        let waiterID = state.withLock { state in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<Void, EngineError>, Never>) in
                state.withLock { state in
                    if Task.isCancelled {
                        continuation.resume(returning: .failure(.waitCancelled))
                        return
                    }
                    if let error = state.terminal[id] {
                        continuation.resume(returning: .failure(error))
                        return
                    }
                    guard let index = state.jobs.firstIndex(where: { $0.id == id }),
                        state.jobs[index].bufferedBytes > windowBytes
                    else {
                        continuation.resume(returning: .success(()))
                        return
                    }
                    state.jobs[index].spaceWaiters[waiterID] = continuation
                }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Result<Void, EngineError>, Never>? in
                guard let index = state.jobs.firstIndex(where: { $0.id == id }) else { return nil }
                return state.jobs[index].spaceWaiters.removeValue(forKey: waiterID)
            }
            waiter?.resume(returning: .failure(.waitCancelled))
        }
        try result.get()
    }
}
