import HTTPServer
import PeerDistEngine

/// Operations: GetOverlappedResult (wait), buffers, lists, and PeerDistServerCancelAsyncOperation.
enum OperationRoutes {
    static func routes(_ ctx: RouteContext) -> [Route] {
        [
            .async(.get, "/instances/{h}/content/{id}/operations/{op}", interruptibleOnDrain: true) { req in
                try await wait(ctx, req) { .content(try $0.contentID()) }
            },
            .sync(.get, "/instances/{h}/content/{id}/operations/{op}/buffer") { req in
                try buffer(ctx, req) { .content(try $0.contentID()) }
            },
            .sync(.get, "/instances/{h}/content/{id}/operations") { req in
                let (instance, params) = try ctx.gate(req)
                return .json(200, Render.page(try list(ctx, instance: instance, params: params, contentId: try params.contentID())))
            },
            // Every operation of the instance, whatever it belongs to (a content, a retrieval, a flush).
            .async(.get, "/instances/{h}/operations/{op}", interruptibleOnDrain: true) { req in
                try await wait(ctx, req) { _ in nil }
            },
            .sync(.get, "/instances/{h}/operations/{op}/buffer") { req in
                try buffer(ctx, req) { _ in nil }
            },
            .sync(.get, "/instances/{h}/operations") { req in
                let (instance, params) = try ctx.gate(req)
                return .json(200, Render.page(try list(ctx, instance: instance, params: params, contentId: nil)))
            },
            // PeerDistServerCancelAsyncOperation: answers only once the final result is posted.
            // An operation that is unknown or already ended is answered inline (4059); only a
            // pending one needs the engine's asynchronous cancel, which waits for its work to stop.
            .inlineFirst(.delete, "/instances/{h}/content/{id}/operations/{op}", inline: { req in
                try cancelInline(ctx, req) { .content(try $0.contentID()) }
            }, waiting: { req in
                try await cancel(ctx, req) { .content(try $0.contentID()) }
            }),
        ]
    }

    // MARK: - Shared by the owners' routes (content, retrieval, instance)

    /// GetOverlappedResult: the operation, after waiting up to `timeoutMs` for it to end.
    static func wait(_ ctx: RouteContext, _ req: Request, owner: (Parameters) throws -> OperationOwner?) async throws
        -> Response
    {
        let (instance, params) = try ctx.gate(req)
        let scope = try owner(params)
        let op = try params.operationID()
        let timeout = try ctx.waitTimeout(params)
        let snapshot = try ctx.engine.operation(instance: instance, owner: scope, operation: op)
        guard timeout > .zero, !snapshot.hasEnded else { return .json(200, Render.operation(snapshot)) }
        let waited: OperationSnapshot
        do throws(EngineError) {
            waited = try await ctx.engine.waitOperation(instance: instance, owner: scope, operation: op, timeout: timeout)
        } catch {
            guard RouteContext.isInterrupted(error) else { throw error }
            waited = try ctx.engine.operation(instance: instance, owner: scope, operation: op)
        }
        return .json(200, Render.operation(waited))
    }

    /// The caller's buffer: the bytes a finished read produced.
    static func buffer(_ ctx: RouteContext, _ req: Request, owner: (Parameters) throws -> OperationOwner?) throws -> Response {
        let (instance, params) = try ctx.gate(req)
        let snapshot = try ctx.engine.operation(instance: instance, owner: try owner(params), operation: try params.operationID())
        guard snapshot.hasEnded else {
            throw EngineError(Win32Error(code: 996), "operation '\(snapshot.id)' is still pending")
        }
        guard let buffer = snapshot.buffer else {
            if snapshot.bufferReleased {
                throw EngineError(.contextExpired,
                    "the buffer of operation '\(snapshot.id)' was released: the instance keeps "
                    + "\(ctx.engine.limits.maxRetainedBufferBytesPerInstance) bytes of unfetched read buffers, the newest")
            }
            throw Parameters.invalid("operation '\(snapshot.id)' (\(snapshot.kind.rawValue)) produces no buffer")
        }
        var headers = HTTPFields()
        headers.append(name: "Content-Type", value: "application/octet-stream")
        headers.append(name: "X-PeerDist-Offset", value: String(snapshot.offset))
        return Response(status: 200, headers: headers, body: buffer)
    }

    /// The inline half of a cancel: an operation that is unknown or already ended is answered at
    /// once (4059); only a pending one needs the engine's asynchronous cancel (`nil`).
    static func cancelInline(_ ctx: RouteContext, _ req: Request, owner: (Parameters) throws -> OperationOwner) throws
        -> Response?
    {
        let (instance, params) = try ctx.gate(req)
        let scope = try owner(params)
        let op = try params.operationID()
        let snapshot: OperationSnapshot
        do throws(EngineError) {
            snapshot = try ctx.engine.operation(instance: instance, owner: scope, operation: op)
        } catch {
            if error.code == .operationNotFound { ctx.metrics.cancelled(.notFound) }
            throw error
        }
        guard snapshot.hasEnded else { return nil }
        ctx.metrics.cancelled(.lostRace)
        throw EngineError(.operationNotFound, "operation '\(op)' has already ended")
    }

    /// Server/ClientCancelAsyncOperation: answers only once the final result is posted.
    static func cancel(_ ctx: RouteContext, _ req: Request, owner: (Parameters) throws -> OperationOwner) async throws
        -> Response
    {
        let (instance, params) = try ctx.gate(req)
        let scope = try owner(params)
        let op = try params.operationID()
        let final: OperationSnapshot
        do throws(EngineError) {
            final = try await ctx.engine.cancel(instance: instance, owner: scope, operation: op)
        } catch {
            if error.code.code == 4059 {
                let ended = (try? ctx.engine.operation(instance: instance, owner: scope, operation: op)) != nil
                ctx.metrics.cancelled(ended ? .lostRace : .notFound)
            }
            throw error
        }
        ctx.metrics.cancelled(.canceled)
        return .json(200, .object([
            ("code", .int(0)), ("error", .string("ERROR_SUCCESS")),
            ("lastError", Render.result(Win32Error(code: 995))),
            ("operation", Render.operation(final)),
        ]))
    }

    static func list(_ ctx: RouteContext, instance: String, params: Parameters, contentId: [UInt8]?,
                     owner: OperationOwner? = nil) throws -> OperationPage {
        var state: OperationState?
        if let text = params.request.queryValue("state") {
            guard let parsed = OperationState(rawValue: text) else {
                throw Parameters.invalid("state must be pending, completed, failed or canceled")
            }
            state = parsed
        }
        let pageSize = try params.int("pageSize", default: PeerDistEngine.defaultPageSize, in: 1...1_000) ?? PeerDistEngine.defaultPageSize
        return try ctx.engine.listOperations(
            instance: instance, contentId: contentId, owner: owner, state: state, pageSize: pageSize, pageToken: params.request.queryValue("pageToken"))
    }
}
