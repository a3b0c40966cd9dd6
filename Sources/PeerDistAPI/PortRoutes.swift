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
            .async(.get, "/instances/{h}/ports/{p}/completions", interruptibleOnDrain: true) { req in
                let (instance, params) = try ctx.gate(req)
                let max = try params.int("max", default: 64, in: 1...1_024) ?? 64
                let timeout = try ctx.waitTimeout(params)
                let reservation: Reservation
                do {
                    reservation = try await ctx.engine.dequeue(instance: instance, port: params.path("p"), max: max, timeout: timeout)
                } catch let error where RouteContext.isInterrupted(error) {
                    // Drain (or a vanished client): answer as a timeout, taking nothing.
                    return .json(200, .object([("completions", .array([])), ("timedOut", .bool(true))]))
                }
                let body: JSON = .object([
                    ("completions", .array(reservation.completions.map(Render.completion))),
                    ("timedOut", .bool(reservation.timedOut)),
                ])
                var response = Response.json(200, body)
                // Two-phase dequeue: the completions count as delivered only once the answer is
                // in the kernel's hands; otherwise they go back to the front of the queue.
                response.onWritten = { written in
                    if written { reservation.commit() } else { reservation.requeue() }
                }
                return response
            },
            .sync(.delete, "/instances/{h}/ports/{p}") { req in
                let (instance, params) = try ctx.gate(req)
                try ctx.engine.closePort(instance: instance, port: params.path("p"))
                return .json(200, Render.success)
            },
        ]
    }
}
