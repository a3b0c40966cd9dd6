import Base64URL
import Foundation
import HTTPTypes
import OpenAPIRuntime

/// An operation (an OVERLAPPED) as the service reports it.
public typealias PeerDistOperation = Components.Schemas.Operation
/// One dequeued completion packet.
public typealias PeerDistCompletion = Components.Schemas.Completion
/// The kinds of operation.
public typealias PeerDistOperationKind = Components.Schemas.OperationKind

extension Components.Schemas.Operation {
    /// Whether it has not ended yet.
    public var isPending: Bool { state == .pending }
    /// Its Win32 result code (996 while pending, 995 once cancelled).
    public var resultCode: Int { result.value1.code }
    /// Its Win32 result name.
    public var resultError: String { result.value1.error }
}

/// A content identifier: the content's bytes, sent as base64url without padding.
public struct ContentID: Sendable, Hashable, ExpressibleByStringLiteral, CustomStringConvertible {
    /// The identifier as it appears in paths.
    public let encoded: String

    /// The identifier of these bytes (1 to 1,024 of them).
    public init(bytes: some Sequence<UInt8>) {
        encoded = Base64URL.encode(Array(bytes))
    }

    /// The identifier of this text's UTF-8 bytes.
    public init(_ text: String) { self.init(bytes: Array(text.utf8)) }

    public init(stringLiteral value: String) { self.init(value) }

    public var description: String { encoded }
}

/// One PeerDist instance (`PeerDistStartup`'s handle) and the calls made under it.
public struct PeerDistInstance: Sendable {
    /// The client it was made with.
    public let client: PeerDistClient
    /// The instance handle (`inst_…`).
    public let handle: String

    /// Uses an existing handle.
    public init(client: PeerDistClient, handle: String) {
        self.client = client
        self.handle = handle
    }

    /// `PeerDistShutdown`.
    public func shutdown() async throws {
        _ = try await client.call { try await $0.shutdownInstance(path: .init(h: handle)) }
    }

    // MARK: - Publishing

    /// `PeerDistServerPublishStream`: a stream into which the content's bytes are appended.
    /// - Parameters:
    ///   - contentLength: The exact length to come; nil = unknown.
    ///   - version: Content information version to compute (1 or 2; nil = the server's default, 2).
    ///   - port: The completion port of its operations (nil = `default`).
    ///   - key: The completion key of its operations (nil = 0).
    public func openStream(
        _ content: ContentID, contentLength: Int? = nil, version: Int? = nil, port: String? = nil, key: Int? = nil
    ) async throws -> PeerDistStream {
        let request = Components.Schemas.StreamRequest(contentLength: contentLength, version: version, port: port, key: key)
        let output = try await client.call {
            try await $0.publishStream(path: .init(h: handle, id: content.encoded), body: .json(request))
        }
        guard case .created(let created) = output else { throw PeerDistError.unexpected(output) }
        return PeerDistStream(instance: self, content: content, handle: try created.body.json.stream)
    }

    /// Publishes `bytes`: a stream of that length, one append per `chunkSize` bytes, then the
    /// complete; each waits for its operation to end.
    /// - Returns: The completed `publishCompleteStream` operation.
    /// - Throws: `PeerDistError` with the operation's result when an append or the complete fails.
    @discardableResult
    public func publish(_ content: ContentID, bytes: [UInt8], chunkSize: Int = 64 * 1024, version: Int? = nil) async throws -> PeerDistOperation {
        let stream = try await openStream(content, contentLength: bytes.count, version: version)
        let step = max(1, chunkSize)
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + step)
            try Self.requireSuccess(try await stream.append(Array(bytes[start..<end]), wait: .seconds(30)))
            start = end
        }
        let done = try await stream.complete(wait: .seconds(30))
        try Self.requireSuccess(done)
        return done
    }

    /// Throws the operation's Win32 result unless it completed.
    static func requireSuccess(_ operation: PeerDistOperation) throws {
        guard operation.state == .completed else {
            throw PeerDistError(code: operation.resultCode, error: operation.resultError, status: 200,
                                detail: "operation '\(operation.id)' ended \(operation.state.rawValue)")
        }
    }

    // MARK: - Operations

    /// `GetOverlappedResult`: the operation, after waiting up to `timeout` for it to end (the
    /// server caps waits at its `--max-wait`).
    public func waitOperation(_ content: ContentID, _ operation: String, timeout: Duration = .zero) async throws -> PeerDistOperation {
        let ms = PeerDistClient.milliseconds(timeout)
        let output = try await client.call {
            try await $0.getOperation(path: .init(h: handle, id: content.encoded, op: operation), query: .init(timeoutMs: ms))
        }
        guard case .ok(let ok) = output else { throw PeerDistError.unexpected(output) }
        return try ok.body.json
    }

    /// `PeerDistServerCancelAsyncOperation`: answers once the final result is posted.
    /// - Returns: The operation's final state: `canceled` (995), or what ended it first.
    /// - Throws: `PeerDistError` 4059 when no pending operation has that id.
    @discardableResult
    public func cancel(_ content: ContentID, _ operation: String) async throws -> PeerDistOperation {
        let output = try await client.call {
            try await $0.cancelOperation(path: .init(h: handle, id: content.encoded, op: operation))
        }
        guard case .ok(let ok) = output else { throw PeerDistError.unexpected(output) }
        return try ok.body.json.operation
    }

    // MARK: - Completion ports

    /// `CreateIoCompletionPort`: a new port; returns its name (`port_…`).
    public func createPort() async throws -> String {
        let output = try await client.call { try await $0.createPort(path: .init(h: handle)) }
        guard case .created(let created) = output else { throw PeerDistError.unexpected(output) }
        return try created.body.json.port
    }

    /// Closes a port: callers waiting on it get 735 `ERROR_ABANDONED_WAIT_0`.
    public func closePort(_ port: String) async throws {
        _ = try await client.call { try await $0.closePort(path: .init(h: handle, p: port)) }
    }

    /// `GetQueuedCompletionStatusEx`: up to `max` completions, waiting up to `timeout` for the first.
    public func dequeue(port: String = "default", max: Int = 64, timeout: Duration = .zero) async throws -> (completions: [PeerDistCompletion], timedOut: Bool) {
        let ms = PeerDistClient.milliseconds(timeout)
        let output = try await client.call {
            try await $0.dequeueCompletions(path: .init(h: handle, p: port), query: .init(max: max, timeoutMs: ms))
        }
        guard case .ok(let ok) = output else { throw PeerDistError.unexpected(output) }
        let batch = try ok.body.json
        return (batch.completions, batch.timedOut)
    }

    /// Every completion queued on `port` now, without waiting (at most `limit`).
    public func drain(port: String = "default", limit: Int = 65_536) async throws -> [PeerDistCompletion] {
        var all: [PeerDistCompletion] = []
        while all.count < limit {
            let batch = try await dequeue(port: port, max: min(1_024, limit - all.count), timeout: .zero)
            all += batch.completions
            if batch.completions.isEmpty { break }
        }
        return all
    }

    // MARK: - Content information

    /// The whole content information of published content (MS-PCCRC bytes, byte-exact).
    /// - Parameter version: 1 or 2 (nil = the server's default, 1).
    public func contentInformation(_ content: ContentID, version: Int? = nil, maxBytes: Int = 64 * 1024 * 1024) async throws -> [UInt8] {
        let output = try await client.call {
            try await $0.getContentInformation(path: .init(h: handle, id: content.encoded), query: .init(version: version))
        }
        guard case .ok(let ok) = output else { throw PeerDistError.unexpected(output) }
        return try await [UInt8](collecting: try ok.body.binary, upTo: maxBytes)
    }
}

/// A publishing stream (`PeerDistServerPublishStream`'s handle).
public struct PeerDistStream: Sendable {
    /// The instance it belongs to.
    public let instance: PeerDistInstance
    /// The content it publishes.
    public let content: ContentID
    /// The stream handle (`strm_…`).
    public let handle: String

    private var path: Operations.AddToStream.Input.Path {
        .init(h: instance.handle, id: content.encoded, s: handle)
    }

    private static func prefer(_ wait: Duration?) -> String? {
        guard let wait else { return nil }
        return "wait=\(max(0, PeerDistClient.milliseconds(wait) / 1_000))"
    }

    /// `PeerDistServerPublishAddToStream` with these bytes.
    /// - Parameters:
    ///   - operation: The operation's id (nil = one the server makes).
    ///   - wait: How long the server waits for it to end before answering (`Prefer: wait`, whole seconds).
    /// - Returns: The operation: pending, or ended when it ended in time.
    public func append(_ bytes: [UInt8], operation: String? = nil, wait: Duration? = nil) async throws -> PeerDistOperation {
        try await append(body: HTTPBody(bytes), operation: operation, wait: wait)
    }

    /// `PeerDistServerPublishAddToStream` with a body streamed from `chunks`.
    /// - Parameter length: The body's length when known (Content-Length); nil = chunked.
    public func append<Chunks: AsyncSequence & Sendable>(
        streaming chunks: Chunks, length: Int?, operation: String? = nil, wait: Duration? = nil
    ) async throws -> PeerDistOperation where Chunks.Element == ArraySlice<UInt8> {
        let body = HTTPBody(chunks, length: length.map { .known(Int64($0)) } ?? .unknown, iterationBehavior: .single)
        return try await append(body: body, operation: operation, wait: wait)
    }

    private func append(body: HTTPBody, operation: String?, wait: Duration?) async throws -> PeerDistOperation {
        let output = try await instance.client.call {
            try await $0.addToStream(path: path, query: .init(op: operation), headers: .init(prefer: Self.prefer(wait)), body: .binary(body))
        }
        switch output {
        case .ok(let ok): return try ok.body.json
        case .accepted(let accepted): return try accepted.body.json
        default: throw PeerDistError.unexpected(output)
        }
    }

    /// `PeerDistServerPublishCompleteStream`: once it ends successfully the content is published.
    public func complete(operation: String? = nil, wait: Duration? = nil) async throws -> PeerDistOperation {
        let output = try await instance.client.call {
            try await $0.completeStream(
                path: .init(h: instance.handle, id: content.encoded, s: handle), query: .init(op: operation),
                headers: .init(prefer: Self.prefer(wait)))
        }
        switch output {
        case .ok(let ok): return try ok.body.json
        case .accepted(let accepted): return try accepted.body.json
        default: throw PeerDistError.unexpected(output)
        }
    }

    /// `PeerDistServerCloseStreamHandle`: its pending operations end aborted (995).
    public func close() async throws {
        _ = try await instance.client.call {
            try await $0.closeStream(path: .init(h: instance.handle, id: content.encoded, s: handle))
        }
    }
}
