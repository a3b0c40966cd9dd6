import HTTPServer
import PeerDistEngine

/// Completion ports: CreateIoCompletionPort, GetQueuedCompletionStatusEx as a long-poll, close.
enum PortRoutes {
    static func routes(_ ctx: RouteContext) -> [Route] {
        [
            .sync(.post, "/instances/{h}/ports") { req in
                let (instance, _) = try ctx.gate(req)
                let port = try ctx.engine.createPort(instance: instance)
                var headers = HTTPFields()
                headers.append(name: "Location", value: "/instances/\(instance)/ports/\(port)")
                return .json(201, .object([("port", .string(port))]), headers: headers)
            },
            // Parked, not a task: a waiting dequeue costs a waiter entry and a timer in the engine.
            .parked(.get, "/instances/{h}/ports/{p}/completions", interruptibleOnDrain: true) { req, respond in
                let (instance, params) = try ctx.gate(req)
                let max = try params.int("max", default: 64, in: 1...1_024) ?? 64
                let timeout = try ctx.waitTimeout(params)
                return ctx.engine.dequeue(instance: instance, port: params.path("p"), max: max, timeout: timeout) { result in
                    switch result {
                    case .success(let reservation):
                        respond(completionsAnswer(reservation))
                    case .failure(let error) where error.code.code == 995:
                        // Called off (a drain, or a vanished client): answer as a timeout, taking nothing.
                        respond(.json(200, .object([("completions", .array([])), ("timedOut", .bool(true))])))
                    case .failure(let error):
                        respond.fail(error)
                    }
                }
            },
            .sync(.delete, "/instances/{h}/ports/{p}") { req in
                let (instance, params) = try ctx.gate(req)
                try ctx.engine.closePort(instance: instance, port: params.path("p"))
                return .json(200, Render.success)
            },
        ]
    }

    /// A dequeue's answer. Two-phase: the completions count as delivered only once the answer is
    /// in the kernel's hands; otherwise they go back to the front of the queue.
    private static func completionsAnswer(_ reservation: Reservation) -> Response {
        let body: JSON = .object([
            ("completions", .array(reservation.completions.map(Render.completion))),
            ("timedOut", .bool(reservation.timedOut)),
        ])
        var response = Response.json(200, body)
        response.onWritten = { written in
            if written { reservation.commit() } else { reservation.requeue() }
        }
        return response
    }
}
