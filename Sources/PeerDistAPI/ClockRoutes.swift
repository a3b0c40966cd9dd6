import HTTPServer
import PeerDistEngine

/// The engine's clock for test harnesses: read it always, advance it under `--clock manual`.
/// Guarded like the rest of /admin/*.
enum ClockRoutes {
    struct AdvanceBody: Decodable { var ms: Int }

    /// The longest one advance may move the clock: a day.
    static let maxAdvanceMs = 86_400_000

    static func routes(_ ctx: RouteContext) -> [Route] {
        [
            .sync(.get, "/admin/clock") { req in
                try AdminRoutes.authorize(ctx, req)
                return clock(ctx)
            },
            .sync(.post, "/admin/clock/advance") { req in
                try AdminRoutes.authorize(ctx, req)
                let body = try Parameters(req).body(AdvanceBody.self)
                guard (0...maxAdvanceMs).contains(body.ms) else {
                    throw Parameters.invalid("ms must be 0...\(maxAdvanceMs)")
                }
                guard let manual = ctx.settings.manualClock else {
                    throw EngineError(.notSupported, "the engine runs on the system clock; start peerdistd with --clock manual")
                }
                // Every timer that comes due runs before the answer: a waiter it times out has
                // been woken by the time the caller reads `nowMs`.
                manual.advance(by: .milliseconds(body.ms))
                return clock(ctx)
            },
        ]
    }

    private static func clock(_ ctx: RouteContext) -> Response {
        let (seconds, attoseconds) = ctx.engine.clockNow.sinceOrigin.components
        let ms = seconds * 1_000 + attoseconds / 1_000_000_000_000_000
        return .json(200, .object([
            ("mode", .string(ctx.settings.manualClock == nil ? "system" : "manual")), ("nowMs", .int(ms)),
        ]))
    }
}
