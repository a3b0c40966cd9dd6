import HTTPWire

/// Matches a method and a path against route templates, in a trie of path segments.
/// Literal segments win over `{parameter}` segments. HEAD falls back to GET.
public final class Router: Sendable {
    /// The outcome of a lookup.
    public enum Match: Sendable {
        /// A route and its percent-decoded parameters.
        case found(Route, [String: String])
        /// No template has this path (404).
        case notFound
        /// The path exists with other methods (405 with `Allow`).
        case methodNotAllowed(allow: [String])
        /// A method the server does not recognise: neither a standard one (RFC 9110 §9, PATCH,
        /// QUERY) nor one any route has (501, RFC 9110 §15.6.2). A standard method that a path lacks is
        /// 405 with `Allow`.
        case notImplemented
    }

    private final class Node: @unchecked Sendable {
        // Safety: mutated only while the router is being built, read-only afterwards.
        /// Literal children, compared byte for byte (few per node: a scan beats hashing).
        var literals: [(segment: [UInt8], node: Node)] = []
        var parameter: (name: String, node: Node)?
        var routes: [HTTPMethod: Route] = [:]

        func literal(_ segment: Substring.UTF8View) -> Node? {
            for entry in literals where entry.segment.elementsEqual(segment) { return entry.node }
            return nil
        }
    }

    private let root = Node()
    /// Every method the server recognises: the standard ones and any a route has.
    private let methods: Set<HTTPMethod>
    /// RFC 9110 §9's methods, PATCH (RFC 5789) and the HTTP working group's QUERY (the safe
    /// method with a body): methods a client may well try on any path, answered 405 with `Allow`.
    private static let standardMethods: Set<HTTPMethod> = [
        .get, .head, .post, .put, .delete, .options, .patch, HTTPMethod("CONNECT"), HTTPMethod("TRACE"), HTTPMethod("QUERY"),
    ]

    /// Builds a router.
    /// - Precondition: no two routes share a method and template, and sibling parameters share a name.
    public init(_ routes: [Route]) {
        self.methods = Self.standardMethods.union(routes.map(\.method))
        for route in routes { insert(route) }
    }

    private func insert(_ route: Route) {
        var node = root
        for segment in route.template.split(separator: "/", omittingEmptySubsequences: true) {
            if segment.hasPrefix("{") && segment.hasSuffix("}") {
                let name = String(segment.dropFirst().dropLast())
                if let existing = node.parameter {
                    precondition(existing.name == name, "sibling parameters must share a name: \(route.template)")
                    node = existing.node
                } else {
                    let child = Node()
                    node.parameter = (name, child)
                    node = child
                }
            } else if let child = node.literal(segment.utf8) {
                node = child
            } else {
                let child = Node()
                node.literals.append((Array(segment.utf8), child))
                node = child
            }
        }
        precondition(node.routes[route.method] == nil, "duplicate route \(route.method) \(route.template)")
        node.routes[route.method] = route
    }

    /// Finds the route for a method and a (still percent-encoded) path.
    public func match(_ method: HTTPMethod, path: Substring) -> Match {
        guard methods.contains(method) else { return .notImplemented }
        var rawParameters: [(String, Substring)] = []
        // Split on bytes, not Characters: no grapheme breaking on the hot path.
        let segments = path.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).dropFirst().map { Substring($0) }
        guard let node = find(root, segments[...], &rawParameters), !node.routes.isEmpty else {
            return .notFound
        }
        let route = node.routes[method] ?? (method == .head ? node.routes[.get] : nil)
        guard let route else {
            var allow = node.routes.keys.map(\.rawValue)
            if node.routes[.get] != nil && node.routes[.head] == nil { allow.append("HEAD") }
            return .methodNotAllowed(allow: allow.sorted())
        }
        var parameters: [String: String] = [:]
        for (name, raw) in rawParameters {
            // A value that is not valid percent-encoded UTF-8 is handed on raw: the handler's own
            // validation rejects it, in its order of checks.
            parameters[name] = PercentDecoding.decode(raw) ?? String(raw)
        }
        return .found(route, parameters)
    }

    /// Depth-first: a literal child first, then the parameter child (backtracking if the
    /// literal branch leads nowhere).
    private func find(_ node: Node, _ segments: ArraySlice<Substring>, _ params: inout [(String, Substring)]) -> Node? {
        guard let segment = segments.first else { return node }
        let rest = segments.dropFirst()
        if let child = node.literal(segment.utf8) {
            let mark = params.count
            if let found = find(child, rest, &params), !found.routes.isEmpty { return found }
            params.removeSubrange(mark...)
        }
        if let (name, child) = node.parameter {
            params.append((name, segment))
            if let found = find(child, rest, &params) { return found }
            params.removeLast()
        }
        return nil
    }
}
