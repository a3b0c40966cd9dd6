import HTTPServer
import PeerDistEngine

/// What every route handler shares.
struct RouteContext: Sendable {
    let engine: PeerDistEngine
    let settings: PeerDistService.Settings
    let metrics: ServiceMetrics

    /// The principal of a request: one principal for every caller while no per-caller tokens
    /// are configured (API.md, Instances).
    func principal(_ request: Request) -> String { "default" }

    /// The first checks of a call under an instance (policy, availability, handle), before any
    /// parameter is validated.
    func gate(_ request: Request) throws -> (instance: String, params: Parameters) {
        let params = Parameters(request)
        let instance = params.path("h")
        try engine.checkCall(instance: instance)
        return (instance, params)
    }

    /// Whether a wait ended because its task was cancelled (a drain, or the client left).
    static func isInterrupted(_ error: any Error) -> Bool {
        Task.isCancelled && (error as? EngineError)?.code.code == 995
    }

    /// A long-poll's timeout, capped by `--max-wait`.
    func waitTimeout(_ params: Parameters) throws -> Duration {
        min(try params.timeout(), .milliseconds(settings.maxWaitMs))
    }

    /// 202 with the pending operation, or, under `Prefer: wait=N`, the operation once it ended
    /// (200) or still pending at the deadline (202), with `Preference-Applied`.
    func accepted(_ op: OperationSnapshot, instance: String, params: Parameters) async -> Response {
        guard let seconds = params.preferWait() else { return .json(202, Render.operation(op)) }
        var headers = HTTPFields()
        headers.append(name: "Preference-Applied", value: "wait=\(seconds)")
        var current = op
        if !op.hasEnded {
            let timeout = min(Duration.seconds(seconds), .milliseconds(settings.maxWaitMs))
            if let waited = try? await engine.waitOperation(instance: instance, contentId: op.contentId, operation: op.id, timeout: timeout) {
                current = waited
            }
        }
        return .json(current.hasEnded ? 200 : 202, Render.operation(current), headers: headers)
    }
}
