import HTTPServer
import PeerDistEngine

/// PeerDistStartup, GetStatusEx, status-change notifications, Shutdown.
enum InstanceRoutes {
    struct StartupBody: Decodable { var version: Int? }

    static func routes(_ ctx: RouteContext) -> [Route] {
        [
            .sync(.post, "/instances") { req in
                let body = try Parameters(req).body(StartupBody.self)
                let info = try ctx.engine.startup(version: body.version ?? 2, principal: ctx.principal(req))
                var headers = HTTPFields()
                headers.append(name: "Location", value: "/instances/\(info.handle)")
                return .json(201, .object([
                    ("handle", .string(info.handle)), ("version", .int(info.version)), ("status", .string(info.status.rawValue)),
                ]), headers: headers)
            },
            .sync(.get, "/instances/{h}") { req in
                let info = try ctx.engine.instance(Parameters(req).path("h"))
                return .json(200, .object([
                    ("handle", .string(info.handle)), ("status", .string(info.status.rawValue)),
                    ("minVersion", .int(info.minVersion)), ("maxVersion", .int(info.maxVersion)),
                ]))
            },
            .async(.get, "/instances/{h}/status", interruptibleOnDrain: true) { req in
                let params = Parameters(req)
                let instance = params.path("h")
                _ = try ctx.engine.instance(instance)
                var since = try ctx.engine.status(instance: instance)
                if let text = req.queryValue("since") {
                    guard let parsed = ServiceStatus(rawValue: text) else {
                        throw Parameters.invalid("since must be available, unavailable or disabled")
                    }
                    since = parsed
                }
                let timeout = try ctx.waitTimeout(params)
                let change: StatusChange
                do {
                    change = try await ctx.engine.waitStatusChange(instance: instance, since: since, timeout: timeout)
                } catch let error where RouteContext.isInterrupted(error) {
                    let status = try ctx.engine.status(instance: instance)
                    return .json(200, .object([("status", .string(status.rawValue)), ("changed", .bool(status != since))]))
                }
                return .json(200, .object([("status", .string(change.status.rawValue)), ("changed", .bool(change.changed))]))
            },
            .async(.delete, "/instances/{h}") { req in
                try await ctx.engine.shutdown(instance: Parameters(req).path("h"))
                return .json(200, Render.success)
            },
        ]
    }
}
