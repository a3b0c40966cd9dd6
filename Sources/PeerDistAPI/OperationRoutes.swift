import HTTPServer
import PeerDistEngine

/// Operations: GetOverlappedResult (wait), buffers, lists, and PeerDistServerCancelAsyncOperation.
enum OperationRoutes {
    static func routes(_ ctx: RouteContext) -> [Route] {
        [
            .async(.get, "/instances/{h}/content/{id}/operations/{op}", interruptibleOnDrain: true) { req in
                let (instance, params) = try ctx.gate(req)
                let contentId = try params.contentID()
                let op = try params.operationID()
                let timeout = try ctx.waitTimeout(params)
                var snapshot = try ctx.engine.operation(instance: instance, contentId: contentId, operation: op)
                if timeout > .zero, !snapshot.hasEnded {
                    do {
                        snapshot = try await ctx.engine.waitOperation(instance: instance, contentId: contentId, operation: op, timeout: timeout)
                    } catch let error where RouteContext.isInterrupted(error) {
                        snapshot = try ctx.engine.operation(instance: instance, contentId: contentId, operation: op)
                    }
                }
                return .json(200, Render.operation(snapshot))
            },
            .sync(.get, "/instances/{h}/content/{id}/operations/{op}/buffer") { req in
                let (instance, params) = try ctx.gate(req)
                let snapshot = try ctx.engine.operation(instance: instance, contentId: try params.contentID(), operation: try params.operationID())
                guard snapshot.hasEnded else {
                    throw EngineError(Win32Error(code: 996), "operation '\(snapshot.id)' is still pending")
                }
                guard let buffer = snapshot.buffer else {
                    throw Parameters.invalid("operation '\(snapshot.id)' (\(snapshot.kind.rawValue)) produces no buffer")
                }
                var headers = HTTPFields()
                headers.append(name: "Content-Type", value: "application/octet-stream")
                headers.append(name: "X-PeerDist-Offset", value: String(snapshot.offset))
                return Response(status: 200, headers: headers, body: buffer)
            },
            .sync(.get, "/instances/{h}/content/{id}/operations") { req in
                let (instance, params) = try ctx.gate(req)
                return .json(200, Render.page(try list(ctx, instance: instance, params: params, contentId: try params.contentID())))
            },
            .sync(.get, "/instances/{h}/operations/{op}") { req in
                let (instance, params) = try ctx.gate(req)
                return .json(200, Render.operation(try ctx.engine.operation(instance: instance, operation: try params.operationID())))
            },
            .sync(.get, "/instances/{h}/operations") { req in
                let (instance, params) = try ctx.gate(req)
                return .json(200, Render.page(try list(ctx, instance: instance, params: params, contentId: nil)))
            },
            // PeerDistServerCancelAsyncOperation: answers only once the final result is posted.
            // An operation that is unknown or already ended is answered inline (4059); only a
            // pending one needs the engine's asynchronous cancel, which waits for its work to stop.
            .inlineFirst(.delete, "/instances/{h}/content/{id}/operations/{op}", inline: { req in
                let (instance, params) = try ctx.gate(req)
                let contentId = try params.contentID()
                let op = try params.operationID()
                let snapshot: OperationSnapshot
                do {
                    snapshot = try ctx.engine.operation(instance: instance, contentId: contentId, operation: op)
                } catch let error as EngineError where error.code == .operationNotFound {
                    ctx.metrics.cancelled(.notFound)
                    throw error
                }
                guard snapshot.hasEnded else { return nil }
                ctx.metrics.cancelled(.lostRace)
                throw EngineError(.operationNotFound, "operation '\(op)' of this content has already ended")
            }, waiting: { req in
                let (instance, params) = try ctx.gate(req)
                let contentId = try params.contentID()
                let op = try params.operationID()
                let final: OperationSnapshot
                do {
                    final = try await ctx.engine.cancel(instance: instance, contentId: contentId, operation: op)
                } catch let error as EngineError where error.code.code == 4059 {
                    let ended = (try? ctx.engine.operation(instance: instance, contentId: contentId, operation: op)) != nil
                    ctx.metrics.cancelled(ended ? .lostRace : .notFound)
                    throw error
                }
                ctx.metrics.cancelled(.canceled)
                return .json(200, .object([
                    ("code", .int(0)), ("error", .string("ERROR_SUCCESS")),
                    ("lastError", Render.result(Win32Error(code: 995))),
                    ("operation", Render.operation(final)),
                ]))
            }),
        ]
    }

    private static func list(_ ctx: RouteContext, instance: String, params: Parameters, contentId: [UInt8]?) throws -> OperationPage {
        var state: OperationState?
        if let text = params.request.queryValue("state") {
            guard let parsed = OperationState(rawValue: text) else {
                throw Parameters.invalid("state must be pending, completed, failed or canceled")
            }
            state = parsed
        }
        let pageSize = try params.int("pageSize", default: PeerDistEngine.defaultPageSize, in: 1...1_000) ?? PeerDistEngine.defaultPageSize
        return try ctx.engine.listOperations(
            instance: instance, contentId: contentId, state: state, pageSize: pageSize, pageToken: params.request.queryValue("pageToken"))
    }
}
