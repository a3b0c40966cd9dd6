import HTTPServer
import PeerDistEngine

/// Service controls: Group Policy, service state, and the test harness's faults.
enum AdminRoutes {
    struct PolicyBody: Decodable { var enabled: Bool }
    struct ServiceBody: Decodable {
        var available: Bool
        var retryAfterSeconds: Int?
    }
    struct FaultsBody: Decodable {
        var completionDelayMs: Int?
        var kinds: [String]?
    }

    static func routes(_ ctx: RouteContext) -> [Route] {
        [
            .sync(.get, "/admin/policy") { req in
                try authorize(ctx, req)
                return policy(ctx)
            },
            .async(.put, "/admin/policy") { req in
                try authorize(ctx, req)
                let body = try Parameters(req).body(PolicyBody.self)
                await ctx.engine.setPolicy(enabled: body.enabled)
                return policy(ctx)
            },
            .sync(.get, "/admin/service") { req in
                try authorize(ctx, req)
                return service(ctx)
            },
            .async(.put, "/admin/service") { req in
                try authorize(ctx, req)
                let body = try Parameters(req).body(ServiceBody.self)
                if let seconds = body.retryAfterSeconds, !(0...86_400).contains(seconds) {
                    throw Parameters.invalid("retryAfterSeconds must be 0...86400")
                }
                try await ctx.engine.setService(available: body.available, retryAfterSeconds: body.retryAfterSeconds)
                return service(ctx)
            },
            .sync(.get, "/admin/faults") { req in
                try authorize(ctx, req)
                return faults(ctx)
            },
            .sync(.put, "/admin/faults") { req in
                try authorize(ctx, req)
                let body = try Parameters(req).body(FaultsBody.self)
                var kinds: Set<OperationKind>?
                if let names = body.kinds {
                    kinds = Set(try names.map { name in
                        guard let kind = OperationKind(rawValue: name) else { throw Parameters.invalid("unknown operation kind '\(name)'") }
                        return kind
                    })
                }
                try ctx.engine.setFaults(FaultSettings(completionDelayMs: body.completionDelayMs ?? 0, kinds: kinds))
                return faults(ctx)
            },
        ]
    }

    /// With an admin token configured, `Authorization: Bearer <token>` is required: 401 without
    /// it, 403 with another (both ERROR_ACCESS_DENIED).
    static func authorize(_ ctx: RouteContext, _ req: Request) throws {
        try ctx.access.requireAdmin(req)
    }

    private static func policy(_ ctx: RouteContext) -> Response {
        .json(200, .object([("enabled", .bool(ctx.engine.serviceControls.policyEnabled))]))
    }

    private static func service(_ ctx: RouteContext) -> Response {
        let c = ctx.engine.serviceControls
        return .json(200, .object([
            ("available", .bool(c.available)), ("retryAfterSeconds", .int(c.retryAfterSeconds)), ("status", .string(c.status.rawValue)),
        ]))
    }

    private static func faults(_ ctx: RouteContext) -> Response {
        let f = ctx.engine.faults
        var members: [(String, JSON)] = [("completionDelayMs", .int(f.completionDelayMs))]
        if let kinds = f.kinds { members.append(("kinds", .array(kinds.map(\.rawValue).sorted().map { .string($0) }))) }
        return .json(200, .object(members))
    }
}
