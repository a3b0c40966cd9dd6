import BlockCache
import HTTPServer
import PeerDistEngine

/// PeerDistClient*: retrievals, content information portions, AddData, block and stream reads,
/// GetInformationByHandle, flushes, and their operations (wait, buffer, cancel, cancel-all).
enum RetrievalRoutes {
    struct OpenBody: Decodable {
        var contentTag: String?
        var port: String?
        var key: UInt64?
    }

    struct ReadBody: Decodable {
        var mode: String?
        var offset: UInt64?
        var maxBytes: Int?
        var timeoutMs: Int?
    }

    /// A read's buffer size when the body names none.
    static let defaultMaxBytes = 65_536

    static func routes(_ ctx: RouteContext) -> [Route] {
        let owner: @Sendable (Parameters) -> OperationOwner = { params in .retrieval(params.path("r")) }
        return [
            .sync(.post, "/instances/{h}/retrievals") { req in
                let (instance, params) = try ctx.gate(req)
                let body = try params.body(OpenBody.self)
                let handle = try ctx.engine.openRetrieval(
                    instance: instance, contentTag: try contentTag(body.contentTag), port: body.port ?? "default",
                    key: body.key ?? 0)
                var headers = HTTPFields()
                headers.append(name: "Location", value: "/instances/\(instance)/retrievals/\(handle)")
                return .json(201, .object([("retrieval", .string(handle))]), headers: headers)
            },
            .async(.delete, "/instances/{h}/retrievals/{r}") { req in
                let (instance, params) = try ctx.gate(req)
                try await ctx.engine.closeRetrieval(instance: instance, retrieval: params.path("r"))
                return .json(200, Render.success)
            },
            .sync(.get, "/instances/{h}/retrievals/{r}") { req in
                let (instance, params) = try ctx.gate(req)
                return .json(200, Render.retrieval(try ctx.engine.retrievalInfo(instance: instance, retrieval: params.path("r"))))
            },
            .async(.post, "/instances/{h}/retrievals/{r}/contentinfo", interruptibleOnDrain: true) { req in
                let (instance, params) = try ctx.gate(req)
                let bytes = try octets(req)
                let op = try ctx.engine.addContentInformation(
                    instance: instance, retrieval: params.path("r"), bytes: bytes, operation: try params.chosenOperationName())
                return await ctx.accepted(op, instance: instance, params: params)
            },
            .async(.post, "/instances/{h}/retrievals/{r}/contentinfo/complete", interruptibleOnDrain: true) { req in
                let (instance, params) = try ctx.gate(req)
                let op = try ctx.engine.completeContentInformation(
                    instance: instance, retrieval: params.path("r"), operation: try params.chosenOperationName())
                return await ctx.accepted(op, instance: instance, params: params)
            },
            .async(.post, "/instances/{h}/retrievals/{r}/data", body: .streamed, interruptibleOnDrain: true) { req in
                try await addData(ctx, req)
            },
            .async(.post, "/instances/{h}/retrievals/{r}/reads", interruptibleOnDrain: true) { req in
                let (instance, params) = try ctx.gate(req)
                let body = try params.body(ReadBody.self)
                let offset: UInt64?
                switch body.mode {
                case "block":
                    guard let given = body.offset else { throw Parameters.invalid("a block read needs its offset") }
                    offset = given
                case "stream":
                    guard body.offset == nil else {
                        throw Parameters.invalid("a stream read reads at the retrieval's position; it takes no offset")
                    }
                    offset = nil
                default:
                    throw Parameters.invalid("mode must be block or stream")
                }
                let maxBytes = body.maxBytes ?? defaultMaxBytes
                guard maxBytes >= 0 else { throw Parameters.invalid("maxBytes must not be negative") }
                let timeout: Duration?
                switch body.timeoutMs {
                case nil: timeout = ctx.engine.limits.defaultReadTimeout
                case 0: timeout = nil
                case let ms?:
                    guard ms > 0 else { throw Parameters.invalid("timeoutMs must not be negative") }
                    timeout = .milliseconds(ms)
                }
                // A caller that waits for a read of the local cache only runs it in this task.
                let op = try ctx.engine.read(
                    instance: instance, retrieval: params.path("r"), offset: offset, maxBytes: maxBytes, timeout: timeout,
                    operation: try params.chosenOperationName(), runsInline: (ctx.appliedWait(params) ?? 0) > 0)
                if let work = op.work { await work() }
                return await ctx.accepted(op, instance: instance, params: params)
            },
            .sync(.get, "/instances/{h}/retrievals/{r}/operations") { req in
                let (instance, params) = try ctx.gate(req)
                return .json(200, Render.page(try OperationRoutes.list(ctx, instance: instance, params: params, contentId: nil, owner: owner(params))))
            },
            // PeerDistClientCancelAsyncOperation with a NULL OVERLAPPED.
            .async(.delete, "/instances/{h}/retrievals/{r}/operations") { req in
                let (instance, params) = try ctx.gate(req)
                let cancelled = try await ctx.engine.cancelAll(instance: instance, retrieval: params.path("r"))
                return .json(200, .object([
                    ("code", .int(0)), ("error", .string("ERROR_SUCCESS")),
                    ("operations", .array(cancelled.map(Render.operation))),
                ]))
            },
            .async(.get, "/instances/{h}/retrievals/{r}/operations/{op}", interruptibleOnDrain: true) { req in
                try await OperationRoutes.wait(ctx, req, owner: owner)
            },
            .sync(.get, "/instances/{h}/retrievals/{r}/operations/{op}/buffer") { req in
                try OperationRoutes.buffer(ctx, req, owner: owner)
            },
            .inlineFirst(.delete, "/instances/{h}/retrievals/{r}/operations/{op}", inline: { req in
                try OperationRoutes.cancelInline(ctx, req, owner: owner)
            }, waiting: { req in
                try await OperationRoutes.cancel(ctx, req, owner: owner)
            }),
            .async(.post, "/instances/{h}/flushes", interruptibleOnDrain: true) { req in
                let (instance, params) = try ctx.gate(req)
                let body = try params.body(OpenBody.self)
                let op = try ctx.engine.flush(
                    instance: instance, contentTag: try contentTag(body.contentTag), port: body.port ?? "default",
                    key: body.key ?? 0, operation: try params.chosenOperationName())
                return await ctx.accepted(op, instance: instance, params: params)
            },
        ]
    }

    /// PeerDistClientAddData: the body streams from the socket into the cache, a window at a time.
    private static func addData(_ ctx: RouteContext, _ req: Request) async throws -> Response {
        let (instance, params) = try ctx.gate(req)
        guard let text = req.queryValue("offset"), let offset = UInt64(text) else {
            throw Parameters.invalid("offset (the absolute content offset, an unsigned integer) is required")
        }
        guard case .stream(let body) = req.body else { throw HTTPError.http(411, "a request body is required") }
        if let type = req.headers["Content-Type"], !type.lowercased().hasPrefix("application/octet-stream") {
            throw HTTPError.http(415, "the body must be application/octet-stream")
        }
        let feed = try ctx.engine.beginAddData(
            instance: instance, retrieval: params.path("r"), offset: offset,
            expectedLength: body.declaredLength.map { Int(clamping: $0) }, operation: try params.chosenOperationName())
        // As publishing's append: the body is fed from a task of its own (a drain does not cut it),
        // and a watcher stops the feed when the operation ends while the body is awaited.
        let feeding = Task { () async -> Result<Void, any Error> in
            do {
                while let chunk = try await body.next() { try await feed.write(chunk) }
                await feed.finish()
            } catch is EngineError {
                // The operation ended (cancelled, closed, out of bounds, past its bound): its state is the answer.
            } catch {
                if feed.started.current.state != .pending { return .success(()) }
                await feed.abort()
                return .failure(error)
            }
            return .success(())
        }
        let fed = await ctx.feed(feeding, instance: instance, owner: feed.started.accepted.owner, operation: feed.started.accepted.id)
        try fed.get()
        return await ctx.accepted(feed.started, instance: instance, params: params)
    }

    /// A `PEERDIST_CONTENT_TAG`: 32 hexadecimal digits (16 bytes).
    static func contentTag(_ text: String?) throws -> ContentTag {
        guard let text else { throw Parameters.invalid("contentTag (32 hexadecimal digits) is required") }
        guard let tag = ContentTag(hex: text) else { throw Parameters.invalid("contentTag must be 32 hexadecimal digits") }
        return tag
    }

    /// An `application/octet-stream` body (a content information portion, AddData).
    private static func octets(_ req: Request) throws -> [UInt8] {
        if let type = req.headers["Content-Type"], !type.lowercased().hasPrefix("application/octet-stream") {
            throw HTTPError.http(415, "the body must be application/octet-stream")
        }
        return req.body.bytes
    }
}
