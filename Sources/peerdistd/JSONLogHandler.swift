import Foundation
import HTTPServer
import Logging
import Synchronization

/// One JSON object per line on standard error: time, level, label, message and metadata members.
struct JSONLogHandler: LogHandler {
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    let label: String
    private static let lock = Mutex(())

    init(label: String) { self.label = label }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        var line: [UInt8] = Array(#"{"time":"#.utf8)
        JSONText.appendString(Date().formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)), to: &line)
        line += Array(#","level":"#.utf8)
        JSONText.appendString(event.level.rawValue, to: &line)
        line += Array(#","label":"#.utf8)
        JSONText.appendString(label, to: &line)
        line += Array(#","message":"#.utf8)
        JSONText.appendString(event.message.description, to: &line)
        for key in merged.keys.sorted() {
            guard let value = merged[key] else { continue }
            line.append(0x2C)
            JSONText.appendString(key, to: &line)
            line.append(0x3A)
            JSONText.appendString(value.description, to: &line)
        }
        line += Array("}\n".utf8)
        let text = String(decoding: line, as: UTF8.self)
        Self.lock.withLock { _ in writeStderr(text) }
    }
}
