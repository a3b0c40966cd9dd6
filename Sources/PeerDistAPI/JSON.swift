import BlockCache
import Foundation
import HTTPServer
import PeerDistEngine

/// A JSON value with ordered object members, serialised by hand (fast, stable member order).
enum JSON: Sendable {
    case string(String)
    case int(Int64)
    case uint(UInt64)
    case bool(Bool)
    case null
    case array([JSON])
    case object([(String, JSON)])

    /// UTF-8 bytes of the value.
    var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(to: &out)
        return out
    }

    private func write(to out: inout [UInt8]) {
        switch self {
        case .string(let s): JSONText.appendString(s, to: &out)
        case .int(let v): JSONText.appendInteger(v, to: &out)
        case .uint(let v): JSONText.appendInteger(v, to: &out)
        case .bool(let v): out.append(contentsOf: (v ? "true" : "false").utf8)
        case .null: out.append(contentsOf: "null".utf8)
        case .array(let items):
            out.append(0x5B)
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(0x2C) }
                item.write(to: &out)
            }
            out.append(0x5D)
        case .object(let members):
            out.append(0x7B)
            for (i, (key, value)) in members.enumerated() {
                if i > 0 { out.append(0x2C) }
                JSONText.appendString(key, to: &out)
                out.append(0x3A)
                value.write(to: &out)
            }
            out.append(0x7D)
        }
    }

    static func int(_ v: Int) -> JSON { .int(Int64(v)) }
}

extension Response {
    /// A JSON response.
    static func json(_ status: Int, _ value: JSON, headers: HTTPFields = HTTPFields()) -> Response {
        .json(status, value.bytes, headers: headers)
    }
}

/// The JSON shapes of engine values (API.md).
enum Render {
    static let success: JSON = .object([("code", .int(0)), ("error", .string("ERROR_SUCCESS"))])

    static func result(_ error: Win32Error) -> JSON {
        .object([("code", .uint(UInt64(error.code))), ("error", .string(error.name))])
    }

    static func date(_ date: Date) -> JSON {
        .string(date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
    }

    static func operation(_ op: OperationSnapshot) -> JSON {
        var members: [(String, JSON)] = [
            ("id", .string(op.id)),
            ("kind", .string(op.kind.rawValue)),
            ("contentId", .string(ContentID.encode(op.contentId))),
            ("state", .string(op.state.rawValue)),
            ("result", result(op.result)),
            ("bytesTransferred", .uint(op.bytesTransferred)),
            ("offset", .uint(op.offset)),
            ("createdAt", date(op.createdAt)),
        ]
        if let ended = op.endedAt { members.append(("endedAt", date(ended))) }
        if case .retrieval(let handle) = op.owner { members.append(("retrieval", .string(handle))) }
        return .object(members)
    }

    /// PeerDistClientGetInformationByHandle (`PEERDIST_CLIENT_BASIC_INFO`) and the retrieval's state.
    static func retrieval(_ info: RetrievalInfo) -> JSON {
        var members: [(String, JSON)] = [
            ("retrieval", .string(info.handle)),
            ("contentTag", .string(info.contentTag.hex)),
            ("flashCrowd", .bool(info.flashCrowd)),
            ("contentInfoState", .string(info.contentInfoState.rawValue)),
            ("contentInfoBytes", .int(info.contentInfoBytes)),
            ("streamPosition", .uint(info.streamPosition)),
        ]
        if let version = info.version { members.append(("version", .int(version))) }
        if let range = info.contentRange {
            members.append(("contentOffset", .uint(range.lowerBound)))
            members.append(("contentLength", .uint(range.upperBound - range.lowerBound)))
        }
        return .object(members)
    }

    static func completion(_ c: Completion) -> JSON {
        .object([
            ("sequence", .uint(c.sequence)),
            ("key", .uint(c.key)),
            ("operation", .string(c.operation)),
            ("contentId", .string(ContentID.encode(c.contentId))),
            ("kind", .string(c.kind.rawValue)),
            ("result", result(c.result)),
            ("bytesTransferred", .uint(c.bytesTransferred)),
        ])
    }

    static func page(_ page: OperationPage) -> JSON {
        var members: [(String, JSON)] = [("operations", .array(page.operations.map(operation)))]
        if let token = page.nextPageToken { members.append(("nextPageToken", .string(token))) }
        return .object(members)
    }
}
