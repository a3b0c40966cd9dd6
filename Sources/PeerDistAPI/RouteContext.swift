import Dispatch
import HTTPServer
import PeerDistEngine

/// What every route handler shares.
struct RouteContext: Sendable {
    let engine: PeerDistEngine
    let settings: PeerDistService.Settings
    let metrics: ServiceMetrics
    let access: AccessControl

    /// The principal of a request, as the authentication filter named it: the token's name, or
    /// one principal for every caller while no tokens are configured (API.md, Access).
    func principal(_ request: Request) -> String { request.principal ?? AccessControl.anonymousPrincipal }

    /// The first checks of a call under an instance (policy, availability, handle, owner), before
    /// any parameter is validated. Another principal's instance is as one that does not exist, and
    /// since every handle lives under an instance, this covers ports, streams, content information
    /// and operations too. Every handle the path names (`{p}`, `{s}`, `{c}`, `{r}`) must be open in
    /// the instance: an unknown one is 6 here, whatever else the request carries.
    func gate(_ request: Request) throws -> (instance: String, params: Parameters) {
        let params = Parameters(request)
        let instance = params.path("h")
        let path = request.parameters
        try engine.checkCall(
            instance: instance, principal: principal(request),
            handles: CallHandles(port: path["p"], stream: path["s"], contentInfo: path["c"], retrieval: path["r"]))
        return (instance, params)
    }

    /// The check of the calls that manage or report an instance whatever the status (GetStatus,
    /// status waits, Shutdown): an unknown or foreign instance → 6.
    /// - Returns: the instance handle.
    func ownedInstance(_ request: Request) throws -> String {
        let instance = Parameters(request).path("h")
        try engine.checkOwner(instance: instance, principal: principal(request))
        return instance
    }

    /// Runs `work`, a call that may take long (encoding a large content information), on a
    /// Dispatch queue of its own instead of the connection's worker queue or the tasks' threads,
    /// and gives back its result.
    static func offload<R: Sendable>(_ work: @escaping @Sendable () throws -> R) async throws -> R {
        try await withCheckedThrowingContinuation { continuation in
            offloadQueue.async { continuation.resume(with: Result { try work() }) }
        }
    }

    /// Where `offload` runs its work: concurrent, so that one principal's encodings do not wait
    /// for another's (the engine bounds each principal's, `maxEncodingsPerPrincipal`).
    private static let offloadQueue = DispatchQueue(label: "peerdist.api.offload", qos: .utility, attributes: .concurrent)

    /// Whether a wait ended because its task was cancelled (a drain, or the client left).
    static func isInterrupted(_ error: any Error) -> Bool {
        Task.isCancelled && (error as? EngineError)?.code.code == 995
    }

    /// A long-poll's timeout, capped by `--max-wait`.
    func waitTimeout(_ params: Parameters) throws -> Duration {
        min(try params.timeout(), .milliseconds(settings.maxWaitMs))
    }

    /// The wait a request's `Prefer: wait` asks for, capped by --max-wait (whole seconds, as RFC
    /// 7240 counts them), or nil without one.
    func appliedWait(_ params: Parameters) -> Int? {
        params.preferWait().map { min($0, settings.maxWaitMs / 1_000) }
    }

    /// The answer of a call that started an asynchronous operation (API.md, Conventions): under
    /// `Prefer: wait=N` it first waits for the operation to end, with `Preference-Applied`; then the
    /// status follows the operation's state when the answer is made: 202 while it is pending, 200
    /// with its final state once it has ended (an upload whose stream was closed while its body
    /// arrived, a read served at once), so that 202 always means pending.
    func accepted(_ started: StartedOperation, instance: String, params: Parameters) async -> Response {
        var headers = HTTPFields()
        if let seconds = appliedWait(params) {
            // The wait applied is named in Preference-Applied.
            headers.append(name: "Preference-Applied", value: "wait=\(seconds)")
            let op = started.current
            if !op.hasEnded, seconds > 0 {
                _ = try? await engine.waitOperation(
                    instance: instance, owner: op.owner, operation: op.id, timeout: .seconds(seconds))
            }
        }
        let current = started.current
        return .json(current.hasEnded ? 200 : 202, Render.operation(current), headers: headers)
    }

    /// Waits for `feeding`, a task that feeds a request body into an operation (an append, an
    /// AddData), and stops it when the operation ends while the body is still awaited (a cancel,
    /// close, unpublish or shutdown), instead of waiting for bytes the client may never send. The
    /// watcher leaves once the body is in, before any `Prefer: wait`: only the caller's own wait
    /// stays parked on the operation.
    func feed(_ feeding: Task<Result<Void, any Error>, Never>, instance: String, owner: OperationOwner,
              operation: String) async -> Result<Void, any Error> {
        let engine = self.engine
        let watcher = Task {
            while !Task.isCancelled {
                let state = (try? await engine.waitOperation(instance: instance, owner: owner, operation: operation, timeout: engine.limits.maxWait))?.state
                guard !Task.isCancelled else { return }
                guard let state else {
                    try? await Task.sleep(for: .milliseconds(100))  // no waiter slot now: look again soon
                    continue
                }
                if state != .pending {
                    feeding.cancel()
                    return
                }
            }
        }
        let fed = await feeding.value
        watcher.cancel()
        return fed
    }
}
