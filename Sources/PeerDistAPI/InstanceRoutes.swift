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
            .sync(.get, "/instances") { req in
                let params = Parameters(req)
                let pageSize = try params.int("pageSize", default: PeerDistEngine.defaultPageSize, in: 1...1_000)
                    ?? PeerDistEngine.defaultPageSize
                let principal = ctx.principal(req)
                let page = try ctx.engine.instances(of: principal, pageToken: req.queryValue("pageToken"), limit: pageSize)
                var members: [(String, JSON)] = [("instances", .array(page.instances.map { info in
                    .object([
                        ("handle", .string(info.handle)), ("version", .int(info.version)), ("status", .string(info.status.rawValue)),
                        ("createdAt", Render.date(info.createdAt)), ("lastActivityAt", Render.date(info.lastActivityAt)),
                    ])
                }))]
                if let next = page.next { members.append(("nextPageToken", .string(next))) }
                members.append(("usage", usage(ctx.engine.usage(of: principal), limits: ctx.engine.limits)))
                return .json(200, .object(members))
            },
            .sync(.get, "/instances/{h}") { req in
                let info = try ctx.engine.instance(try ctx.ownedInstance(req))
                return .json(200, .object([
                    ("handle", .string(info.handle)), ("status", .string(info.status.rawValue)),
                    ("minVersion", .int(info.minVersion)), ("maxVersion", .int(info.maxVersion)),
                ]))
            },
            .async(.get, "/instances/{h}/status", interruptibleOnDrain: true) { req in
                let params = Parameters(req)
                let instance = try ctx.ownedInstance(req)
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
                try await ctx.engine.shutdown(instance: try ctx.ownedInstance(req))
                return .json(200, Render.success)
            },
        ]
    }

    /// The caller's `usage` object of `GET /instances`: what it holds against its quotas, and its
    /// memory by what holds it.
    static func usage(_ usage: PrincipalUsage, limits: EngineLimits) -> JSON {
        let memory = usage.memory
        return .object([
            ("instances", .int(usage.instances)), ("pendingOperations", .int(usage.pendingOperations)),
            ("parkedWaiters", .int(usage.parkedWaiters)), ("openHandles", .int(usage.openHandles)),
            ("uploadBytesInFlight", .int(usage.uploadBytesInFlight)),
            ("memoryBytes", .int(memory.total)), ("memoryLimitBytes", .int(limits.maxMemoryPerPrincipal)),
            ("memory", .object([
                ("contentInformation", .int(memory.contentInformation)),
                ("retrievalContentInformation", .int(memory.retrievalContentInformation)),
                ("retrievalData", .int(memory.retrievalData)), ("readBuffers", .int(memory.readBuffers)),
                ("uploads", .int(memory.uploads)),
            ])),
        ])
    }
}
