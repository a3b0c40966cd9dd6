import DequeModule
import Dispatch
import Synchronization

/// The drain: hashing the head job's chunks on the stream's serial queue.
extension StreamPipeline {
    /// Dispatches a drain when the head job can make progress and none is scheduled.
    func scheduleDrainIfNeeded(_ state: inout State) {
        guard !state.drainScheduled, let head = state.jobs.first, head.phase != .awaitingDecision else { return }
        state.drainScheduled = true
        // Weak: a drain still queued when the stream closes (its jobs aborted) must not keep the
        // pipeline, and its hasher, alive until the hashing queue gets to it.
        queue.async { [weak self] in self?.drain() }
    }

    func drain() {
        var budget = Self.drainBudgetBytes
        while budget > 0 {
            let step = state.withLock { nextStep(&$0) }
            switch step {
            case .idle:
                return
            case .hash(let id, let chunk, let hasher):
                var working = hasher
                hash(chunk, into: &working, job: id)
                let resumes = state.withLock { afterHash(&$0, job: id, hasher: working, count: chunk.count) }
                resumes.forEach { $0() }
                budget -= max(1, chunk.count)
            case .finalize(let id, let hasher, let report):
                let hashes = hasher.finalized()
                let proceed = state.withLock { afterFinalize(&$0, job: id) }
                if proceed { report(.streamCompleted(hashes)) }
            case .report(let report, let end):
                report(end)
            }
        }
        queue.async { [weak self] in self?.drain() }
    }

    private func nextStep(_ state: inout State) -> Step {
        guard var head = state.jobs.first, head.phase != .awaitingDecision else {
            state.drainScheduled = false
            return .idle
        }
        if head.phase == .queued {
            head.phase = .running
            state.snapshot = state.hasher
        }
        defer { state.jobs[0] = head }
        guard let hasher = state.hasher else {
            preconditionFailure("the hasher is out of the state only while the drain holds it")
        }
        switch head.kind {
        case .complete:
            if contentLength > 0, state.committedBytes != contentLength {
                head.phase = .awaitingDecision
                return .report(head.report, .failed(.invalidParameter))
            }
            state.activeJob = head.id
            return .finalize(job: head.id, hasher: hasher, report: head.report)
        case .append:
            if let failure = head.failure {
                head.phase = .awaitingDecision
                return .report(head.report, .failed(failure.code))
            }
            if let chunk = head.chunks.popFirst() {
                let total = state.committedBytes + head.hashedBytes + UInt64(chunk.count)
                if contentLength > 0, total > contentLength {
                    head.failure = EngineError(
                        .invalidParameter, "bytes past the declared content length \(contentLength)")
                } else if total > maxLength {
                    head.failure = EngineError(
                        .notEnoughQuota, "content longer than \(maxLength) bytes cannot be published")
                }
                if let failure = head.failure {
                    head.phase = .awaitingDecision
                    return .report(head.report, .failed(failure.code))
                }
                state.hasher = nil
                state.activeJob = head.id
                return .hash(job: head.id, chunk: chunk, hasher: hasher)
            }
            if head.inputEnded {
                head.phase = .awaitingDecision
                return .report(head.report, .appended(bytes: head.hashedBytes))
            }
            state.drainScheduled = false
            return .idle
        }
    }

    private func hash(_ chunk: [UInt8], into hasher: inout PublicationHasher, job id: UInt64) {
        chunk.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                if isStopRequested(job: id) { return }
                let end = min(offset + Self.sliceBytes, raw.count)
                hasher.update(UnsafeRawBufferPointer(rebasing: raw[offset..<end]))
                offset = end
            }
        }
    }

    private func isStopRequested(job id: UInt64) -> Bool {
        state.withLock { state in state.jobs.first.map { $0.id == id && $0.stopRequested } ?? true }
    }

    private func afterHash(_ state: inout State, job id: UInt64, hasher: PublicationHasher, count: Int)
        -> [@Sendable () -> Void]
    {
        state.activeJob = nil
        guard var head = state.jobs.first, head.id == id else {
            preconditionFailure("the active job stays at the head until the drain lets go of it")
        }
        if head.stopRequested {
            state.jobs.removeFirst()
            state.hasher = state.snapshot
            state.snapshot = nil
            return takeStopWaiters(&state)
        }
        state.hasher = hasher
        head.hashedBytes += UInt64(count)
        head.bufferedBytes -= count
        var resumes: [@Sendable () -> Void] = []
        if head.bufferedBytes <= windowBytes {
            resumes = head.spaceWaiters.values.map { waiter in { waiter.resume(returning: .success(())) } }
            head.spaceWaiters = [:]
        }
        state.jobs[0] = head
        return resumes
    }

    private func afterFinalize(_ state: inout State, job id: UInt64) -> Bool {
        state.activeJob = nil
        guard state.jobs.first?.id == id else {
            preconditionFailure("the active job stays at the head until the drain lets go of it")
        }
        if state.jobs[0].stopRequested {
            state.jobs.removeFirst()
            state.snapshot = nil
            let resumes = takeStopWaiters(&state)
            resumes.forEach { $0() }
            return false
        }
        state.jobs[0].phase = .awaitingDecision
        return true
    }

    private func takeStopWaiters(_ state: inout State) -> [@Sendable () -> Void] {
        let waiters = state.stopWaiters
        state.stopWaiters = []
        return waiters.map { waiter in { waiter.resume() } }
    }
}
