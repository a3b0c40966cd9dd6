import HTTPServer
import PCCRC
import PeerDistEngine

/// PeerDistServer*: streams, appends, completion, unpublish, content information.
enum PublishingRoutes {
    struct StreamBody: Decodable {
        var contentLength: UInt64?
        var version: Int?
        var hashAlgorithm: String?
        var port: String?
        var key: UInt64?
    }

    struct ContentInfoBody: Decodable {
        var offset: UInt64?
        var length: UInt64?
        var minVersion: Int?
        var maxVersion: Int?
        var port: String?
        var key: UInt64?
    }

    static func routes(_ ctx: RouteContext) -> [Route] {
        [
            .sync(.post, "/instances/{h}/content/{id}/streams") { req in
                let (instance, params) = try ctx.gate(req)
                let contentId = try params.contentID()
                let body = try params.body(StreamBody.self)
                let algorithm: V1HashAlgorithm
                switch body.hashAlgorithm?.uppercased() {
                case nil, "SHA256": algorithm = .sha256
                case "SHA384": algorithm = .sha384
                case "SHA512": algorithm = .sha512
                default: throw Parameters.invalid("hashAlgorithm must be SHA256, SHA384 or SHA512")
                }
                let stream = try ctx.engine.publishStream(
                    instance: instance, contentId: contentId, principal: ctx.principal(req),
                    contentLength: body.contentLength ?? 0, version: body.version ?? 2, hashAlgorithm: algorithm,
                    port: body.port ?? "default", key: body.key ?? 0)
                var headers = HTTPFields()
                headers.append(name: "Location", value: "/instances/\(instance)/content/\(params.path("id"))/streams/\(stream)")
                return .json(201, .object([("stream", .string(stream))]), headers: headers)
            },
            // The routes that wait through `Prefer: wait` answer at once on drain (202 pending).
            .async(.post, "/instances/{h}/content/{id}/streams/{s}/data", body: .streamed, interruptibleOnDrain: true) { req in
                try await append(ctx, req)
            },
            .async(.post, "/instances/{h}/content/{id}/streams/{s}/complete", interruptibleOnDrain: true) { req in
                let (instance, params) = try ctx.gate(req)
                let op = try ctx.engine.startCompleteStream(
                    instance: instance, contentId: try params.contentID(), stream: params.path("s"),
                    operation: try params.chosenOperationName())
                return await ctx.accepted(op, instance: instance, params: params)
            },
            .async(.delete, "/instances/{h}/content/{id}/streams/{s}") { req in
                let (instance, params) = try ctx.gate(req)
                try await ctx.engine.closeStream(instance: instance, contentId: try params.contentID(), stream: params.path("s"))
                return .json(200, Render.success)
            },
            .sync(.get, "/instances/{h}/content/{id}") { req in
                let (instance, params) = try ctx.gate(req)
                let info = try ctx.engine.publication(instance: instance, contentId: try params.contentID(), principal: ctx.principal(req))
                return .json(200, .object([
                    ("contentId", .string(ContentID.encode(info.contentId))),
                    ("length", .uint(info.length)),
                    ("versions", .array(info.versions.map { .int($0) })),
                    ("publishedAt", Render.date(info.publishedAt)),
                ]))
            },
            .async(.delete, "/instances/{h}/content/{id}") { req in
                let (instance, params) = try ctx.gate(req)
                try await ctx.engine.unpublish(instance: instance, contentId: try params.contentID(), principal: ctx.principal(req))
                return .json(200, Render.success)
            },
            // The two routes that encode a content information (up to some 32 MiB for 64 GiB of
            // content) run off the worker queue, at most `maxEncodingsPerPrincipal` per principal.
            .async(.post, "/instances/{h}/content/{id}/contentinfo") { req in
                let (instance, params) = try ctx.gate(req)
                let contentId = try params.contentID()
                let body = try params.body(ContentInfoBody.self)
                let (engine, principal) = (ctx.engine, ctx.principal(req))
                let handle = try await RouteContext.offload {
                    try engine.openContentInformation(
                        instance: instance, contentId: contentId, principal: principal,
                        offset: body.offset ?? 0, length: body.length ?? 0,
                        minVersion: body.minVersion ?? 1, maxVersion: body.maxVersion ?? 2,
                        port: body.port ?? "default", key: body.key ?? 0)
                }
                var headers = HTTPFields()
                headers.append(name: "Location", value: "/instances/\(instance)/content/\(params.path("id"))/contentinfo/\(handle)")
                return .json(201, .object([("contentInfo", .string(handle))]), headers: headers)
            },
            .async(.get, "/instances/{h}/content/{id}/contentinfo") { req in
                let (instance, params) = try ctx.gate(req)
                let contentId = try params.contentID()
                let version = try params.int("version", default: 1, in: 0...Int(Int32.max)) ?? 1
                let (engine, principal) = (ctx.engine, ctx.principal(req))
                let bytes = try await RouteContext.offload {
                    try engine.contentInformation(instance: instance, contentId: contentId, principal: principal, version: version)
                }
                var headers = HTTPFields()
                headers.append(name: "Content-Type", value: "application/octet-stream")
                return Response(status: 200, headers: headers, body: bytes)
            },
            .async(.post, "/instances/{h}/content/{id}/contentinfo/{c}/reads", interruptibleOnDrain: true) { req in
                let (instance, params) = try ctx.gate(req)
                let contentId = try params.contentID()
                let maxBytes = try params.int("maxBytes", default: 65_536, in: 1...ctx.engine.limits.maxReadBytes) ?? 65_536
                let op = try ctx.engine.startRetrieveContentInformation(
                    instance: instance, contentId: contentId, contentInfo: params.path("c"),
                    operation: try params.chosenOperationName(), maxBytes: maxBytes)
                return await ctx.accepted(op, instance: instance, params: params)
            },
            .async(.delete, "/instances/{h}/content/{id}/contentinfo/{c}") { req in
                let (instance, params) = try ctx.gate(req)
                try await ctx.engine.closeContentInformation(instance: instance, contentId: try params.contentID(), contentInfo: params.path("c"))
                return .json(200, Render.success)
            },
        ]
    }

    /// PeerDistServerPublishAddToStream: the request body streams from the socket into the hasher.
    private static func append(_ ctx: RouteContext, _ req: Request) async throws -> Response {
        let (instance, params) = try ctx.gate(req)
        let contentId = try params.contentID()
        guard case .stream(let body) = req.body else { throw HTTPError.http(411, "a request body is required") }
        if let type = req.headers["Content-Type"], !type.lowercased().hasPrefix("application/octet-stream") {
            throw HTTPError.http(415, "content data must be application/octet-stream")
        }
        let expected = body.declaredLength.map { Int(clamping: $0) }
        let sink = try ctx.engine.beginAppend(
            instance: instance, contentId: contentId, stream: params.path("s"),
            operation: try params.chosenOperationName(), expectedLength: expected)
        // The body is fed from a task of its own, which the route's interruption on drain (meant
        // for the `Prefer: wait` below) does not cancel: a drain lets an upload finish, never cuts
        // it. A client that goes away fails the body stream, which ends the feed.
        let metrics = ctx.metrics
        let feed = Task { () async -> Result<Void, any Error> in
            do {
                while let chunk = try await body.next() {
                    try await sink.write(chunk)
                    metrics.hashed(chunk.count)
                }
                sink.finish()
            } catch is EngineError {
                // The operation already ended (cancelled, invalidated, too many bytes): its final
                // state is what the caller gets; the rest of the body is not read.
            } catch {
                // Stopped by the watcher below: the operation had ended; its state is the answer.
                if sink.started.current.state != .pending { return .success(()) }
                // The body failed (client gone, malformed): nothing of it is added.
                await sink.abort()
                return .failure(error)
            }
            return .success(())
        }
        let fed = await ctx.feed(feed, instance: instance, owner: .content(contentId), operation: sink.operation.id)
        try fed.get()
        return await ctx.accepted(sink.started, instance: instance, params: params)
    }
}
