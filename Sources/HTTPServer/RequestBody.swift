import Synchronization

/// A request body: nothing, bytes the server already read (for routes that buffer), or a stream
/// the handler pulls (for routes that stream, such as content uploads).
public enum RequestBody: Sendable {
    /// No body.
    case empty
    /// The whole body, read before the handler ran.
    case buffered([UInt8])
    /// A body still arriving.
    case stream(BodyStream)

    /// The bytes of a buffered body (empty for the other cases).
    public var bytes: [UInt8] {
        if case .buffered(let b) = self { return b }
        return []
    }
}

/// Why a streamed body ended early.
public enum BodyStreamError: Error, Sendable {
    /// The client closed the connection or sent a malformed body.
    case aborted
}

/// A bounded single-consumer queue of body chunks between a connection and a handler task.
/// The connection pushes chunks; when more than `capacity` bytes wait, it pauses reading until
/// the handler has taken enough (backpressure).
public final class BodyStream: Sendable {
    private struct State {
        var chunks: [[UInt8]] = []
        var buffered = 0
        var finished = false
        var failed = false
        var waiter: CheckedContinuation<[UInt8]?, any Error>?
        var pausedProducer = false
        var demanded = false
    }

    private let state = Mutex(State())
    private let capacity: Int
    /// Declared length when known (Content-Length), nil for chunked.
    public let declaredLength: UInt64?
    private let resumeProducer: @Sendable () -> Void
    private let onFirstRead: @Sendable () -> Void

    /// Creates a stream.
    /// - Parameters:
    ///   - declaredLength: the Content-Length, if any.
    ///   - capacity: bytes buffered before the producer is told to pause.
    ///   - onFirstRead: called (from the consumer's context) the first time the consumer asks for
    ///     a chunk, so that the producer can ask the client for the body then (`100 Continue`).
    ///   - resumeProducer: called (from the consumer's context) once the buffer has drained after a pause.
    public init(
        declaredLength: UInt64?, capacity: Int, onFirstRead: @escaping @Sendable () -> Void = {},
        resumeProducer: @escaping @Sendable () -> Void
    ) {
        self.declaredLength = declaredLength
        self.capacity = capacity
        self.onFirstRead = onFirstRead
        self.resumeProducer = resumeProducer
    }

    /// Bytes waiting for the consumer (for tests of backpressure).
    package var bufferedBytes: Int { state.withLock { $0.buffered } }

    /// The next chunk, or nil at the end of the body.
    /// - Throws: `BodyStreamError.aborted` when the body will never complete; `CancellationError`.
    public func next() async throws -> [UInt8]? {
        let first = state.withLock { s in
            defer { s.demanded = true }
            return !s.demanded
        }
        if first { onFirstRead() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[UInt8]?, any Error>) in
                enum Immediate { case chunk([UInt8], resume: Bool), end, error(any Error), parked }
                let outcome: Immediate = state.withLock { s in
                    if !s.chunks.isEmpty {
                        let chunk = s.chunks.removeFirst()
                        s.buffered -= chunk.count
                        let resume = s.pausedProducer && s.buffered <= capacity / 2
                        if resume { s.pausedProducer = false }
                        return .chunk(chunk, resume: resume)
                    }
                    if s.failed { return .error(BodyStreamError.aborted) }
                    if s.finished { return .end }
                    if Task.isCancelled { return .error(CancellationError()) }
                    s.waiter = continuation
                    return .parked
                }
                switch outcome {
                case .chunk(let chunk, let resume):
                    if resume { resumeProducer() }
                    continuation.resume(returning: chunk)
                case .end: continuation.resume(returning: nil)
                case .error(let error): continuation.resume(throwing: error)
                case .parked: break
                }
            }
        } onCancel: {
            let waiter = state.withLock { s -> CheckedContinuation<[UInt8]?, any Error>? in
                defer { s.waiter = nil }
                return s.waiter
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    // MARK: - Producer side (the connection)

    /// Adds a chunk; returns false when the producer should pause reading.
    package func push(_ chunk: [UInt8]) -> Bool {
        let (waiter, keepReading): (CheckedContinuation<[UInt8]?, any Error>?, Bool) = state.withLock { s in
            if let w = s.waiter {
                s.waiter = nil
                return (w, true)
            }
            s.chunks.append(chunk)
            s.buffered += chunk.count
            if s.buffered > capacity {
                s.pausedProducer = true
                return (nil, false)
            }
            return (nil, true)
        }
        waiter?.resume(returning: chunk)
        return keepReading
    }

    /// Marks the end of the body.
    package func finish() {
        let waiter = state.withLock { s -> CheckedContinuation<[UInt8]?, any Error>? in
            s.finished = true
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume(returning: nil)
    }

    /// Marks the body as never completing (client gone, malformed).
    package func fail() {
        let waiter = state.withLock { s -> CheckedContinuation<[UInt8]?, any Error>? in
            s.failed = true
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume(throwing: BodyStreamError.aborted)
    }
}
