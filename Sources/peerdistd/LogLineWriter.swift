#if canImport(Glibc)
import Glibc
#endif
import HTTPServer
import Logging
import Synchronization

/// Formats and writes log lines cheaply: one request line per answered request is on the hot
/// path, so lines are built as bytes, timestamps reuse the formatted second, and each line is
/// one write(2) to standard error.
enum LogLineWriter {
    private struct SecondCache {
        var second = -1
        var text: [UInt8] = []
    }

    private static let cache = Mutex(SecondCache())
    private static let writeLock = Mutex(())

    /// `2026-11-24T20:28:56.123Z` for now.
    static func appendTimestamp(to out: inout [UInt8]) {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let second = ts.tv_sec
        let prefix: [UInt8] = cache.withLock { c in
            if c.second != second {
                var t = tm()
                var s = second
                gmtime_r(&s, &t)
                func two(_ v: Int32) -> [UInt8] { [UInt8(0x30 + v / 10), UInt8(0x30 + v % 10)] }
                let year = Array(String(Int(t.tm_year) + 1900).utf8)
                c.text = year + [0x2D] + two(t.tm_mon + 1) + [0x2D] + two(t.tm_mday) + [0x54]
                    + two(t.tm_hour) + [0x3A] + two(t.tm_min) + [0x3A] + two(t.tm_sec)
                c.second = second
            }
            return c.text
        }
        out.append(contentsOf: prefix)
        let ms = Int(ts.tv_nsec / 1_000_000)
        out.append(contentsOf: [0x2E, UInt8(0x30 + ms / 100), UInt8(0x30 + ms / 10 % 10), UInt8(0x30 + ms % 10), 0x5A])
    }

    /// Writes one finished line (it must end with a newline).
    static func write(_ line: [UInt8]) {
        writeLock.withLock { _ in
            line.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let n = Glibc.write(2, raw.baseAddress.map { $0 + offset }, raw.count - offset)
                    if n <= 0 { break }
                    offset += n
                }
            }
        }
    }

    /// The event's metadata merged over the handler's, keys sorted.
    static func merged(_ base: Logger.Metadata, _ extra: Logger.Metadata?) -> [(String, Logger.Metadata.Value)] {
        var all = base
        if let extra { all.merge(extra) { $1 } }
        return all.sorted { $0.key < $1.key }
    }
}

/// The daemon's log handler: one line per event on standard error, either
/// `TIME LEVEL LABEL: MESSAGE key=value …` (text) or one JSON object with time, level, label,
/// message and the metadata as members (json).
struct LineLogHandler: LogHandler {
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    let label: String
    let format: DaemonOptions.LogFormat

    init(label: String, format: DaemonOptions.LogFormat) {
        self.label = label
        self.format = format
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var line: [UInt8] = []
        line.reserveCapacity(256)
        let fields = LogLineWriter.merged(metadata, event.metadata)
        switch format {
        case .text:
            LogLineWriter.appendTimestamp(to: &line)
            line.append(0x20)
            line.append(contentsOf: event.level.rawValue.utf8)
            line.append(0x20)
            line.append(contentsOf: label.utf8)
            line.append(contentsOf: ": ".utf8)
            line.append(contentsOf: event.message.description.utf8)
            for (key, value) in fields {
                line.append(0x20)
                line.append(contentsOf: key.utf8)
                line.append(0x3D)
                line.append(contentsOf: value.description.utf8)
            }
            line.append(0x0A)
        case .json:
            line.append(contentsOf: #"{"time":""#.utf8)
            LogLineWriter.appendTimestamp(to: &line)
            line.append(contentsOf: #"","level":"#.utf8)
            JSONText.appendString(event.level.rawValue, to: &line)
            line.append(contentsOf: #","label":"#.utf8)
            JSONText.appendString(label, to: &line)
            line.append(contentsOf: #","message":"#.utf8)
            JSONText.appendString(event.message.description, to: &line)
            for (key, value) in fields {
                line.append(0x2C)
                JSONText.appendString(key, to: &line)
                line.append(0x3A)
                JSONText.appendString(value.description, to: &line)
            }
            line.append(contentsOf: "}\n".utf8)
        }
        LogLineWriter.write(line)
    }
}
