#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import HTTPServer
import Logging
import PeerDistAPI
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

    /// The wall-clock time now.
    static func now() -> timespec {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return ts
    }

    /// `2026-11-24T20:28:56.123Z` for `ts`.
    static func appendTimestamp(_ ts: timespec, to out: inout [UInt8]) {
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

    /// Appends one line, `TIME LEVEL LABEL: MESSAGE key=value …` (text) or one JSON object with
    /// time, level, label, message and the fields as members (json), ending in a newline.
    static func appendLine(
        format: DaemonOptions.LogFormat, at time: timespec, level: Logger.Level, label: String, message: String,
        fields: some Sequence<(key: String, value: String)>, to line: inout [UInt8], closing: Bool = true
    ) {
        switch format {
        case .text:
            appendTimestamp(time, to: &line)
            line.append(0x20)
            line.append(contentsOf: level.rawValue.utf8)
            line.append(0x20)
            line.append(contentsOf: label.utf8)
            line.append(contentsOf: ": ".utf8)
            line.append(contentsOf: message.utf8)
            for (key, value) in fields {
                line.append(0x20)
                line.append(contentsOf: key.utf8)
                line.append(0x3D)
                line.append(contentsOf: value.utf8)
            }
            if closing { line.append(0x0A) }
        case .json:
            line.append(contentsOf: #"{"time":""#.utf8)
            appendTimestamp(time, to: &line)
            line.append(contentsOf: #"","level":"#.utf8)
            JSONText.appendString(level.rawValue, to: &line)
            line.append(contentsOf: #","label":"#.utf8)
            JSONText.appendString(label, to: &line)
            line.append(contentsOf: #","message":"#.utf8)
            JSONText.appendString(message, to: &line)
            for (key, value) in fields {
                line.append(0x2C)
                JSONText.appendString(key, to: &line)
                line.append(0x3A)
                JSONText.appendString(value, to: &line)
            }
            if closing { line.append(contentsOf: "}\n".utf8) }
        }
    }

    /// Appends a request line, as `appendLine` writes any line, with its numbers written
    /// straight into the bytes (this runs for every request at `info`).
    static func appendRequestLine(
        _ record: RequestLogRecord, format: DaemonOptions.LogFormat, at time: timespec, label: String, to line: inout [UInt8]
    ) {
        appendLine(format: format, at: time, level: .info, label: label, message: RequestLogRecord.message,
                   fields: EmptyCollection<(key: String, value: String)>(), to: &line, closing: false)
        record.forEachField { key, value in
            switch format {
            case .text:
                line.append(0x20)
                line.append(contentsOf: key.utf8)
                line.append(0x3D)
                value.append(to: &line)
            case .json:
                line.append(0x2C)
                JSONText.appendString(key, to: &line)
                line.append(0x3A)
                if case .text(let text) = value {
                    JSONText.appendString(text, to: &line)
                } else {
                    line.append(0x22)
                    value.append(to: &line)
                    line.append(0x22)
                }
            }
        }
        line.append(contentsOf: format == .text ? "\n".utf8 : "}\n".utf8)
    }

    /// Writes bytes to standard error, all of them unless it fails: EINTR is retried, and a
    /// non-blocking stderr that is full is waited for, at most `timeout` when one is given.
    static func writeNow(_ bytes: [UInt8], waitingAtMost timeout: Duration? = nil) {
        let deadline = timeout.map { ContinuousClock.now + $0 }
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                if let deadline {
                    // Bounded: write only once stderr can take bytes (a blocking pipe that is full
                    // would otherwise hold this call for good).
                    let left = deadline - .now
                    var fd = pollfd(fd: 2, events: Int16(POLLOUT), revents: 0)
                    let ms = Int32(clamping: max(0, left.components.seconds * 1_000 + left.components.attoseconds / 1_000_000_000_000_000))
                    guard left > .zero, poll(&fd, 1, ms) > 0 else { return }
                }
                let n = Glibc.write(2, raw.baseAddress.map { $0 + offset }, raw.count - offset)
                if n > 0 {
                    offset += n
                    continue
                }
                let error = errno
                if n < 0 && error == EINTR { continue }
                guard n < 0 && (error == EAGAIN || error == EWOULDBLOCK) else { return }
                if deadline == nil {
                    var fd = pollfd(fd: 2, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&fd, 1, -1)
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
        let fields = LogLineWriter.merged(metadata, event.metadata).map { (key: $0.0, value: $0.1.description) }
        let (format, label, level, message) = (format, label, event.level, event.message.description)
        LogOutput.shared.enqueue(.line { line, time in
            LogLineWriter.appendLine(format: format, at: time, level: level, label: label, message: message, fields: fields, to: &line)
        })
    }
}

/// Standard error, buffered and never waited for. Lines are handed to one serial queue through a
/// bounded buffer (in entries and in bytes) and written in batches, one write(2) per batch; when
/// the buffer is full a line is dropped and counted, so a slow or blocked stderr never stalls a
/// worker queue. Request lines are formatted on that queue too, off the workers.
final class LogOutput: Sendable {
    static let shared = LogOutput()

    /// A line still to be formatted.
    enum Entry: Sendable {
        /// Formats itself, with the time it was logged.
        case line(@Sendable (inout [UInt8], timespec) -> Void)
        /// A request line, formatted with the process's label and format.
        case request(RequestLogRecord)
    }

    /// Entries buffered at most.
    static let maxEntries = 8_192
    /// Bytes (estimated) buffered at most.
    static let maxBytes = 1 << 20
    /// How long lines gather before they are written.
    static let batchDelay = DispatchTimeInterval.milliseconds(5)

    private struct State {
        var entries: [(Entry, timespec)] = []
        var bytes = 0
        var scheduled = false
        var onDrop: (@Sendable (Int) -> Void)?
        var requestLabel = "peerdistd"
        var format = DaemonOptions.LogFormat.text
    }

    private let state = Mutex(State())
    private let queue = DispatchQueue(label: "peerdist.log")

    /// Sets how request lines are written and who counts dropped lines.
    func configure(format: DaemonOptions.LogFormat, requestLabel: String, onDrop: @escaping @Sendable (Int) -> Void) {
        state.withLock {
            $0.format = format
            $0.requestLabel = requestLabel
            $0.onDrop = onDrop
        }
    }

    /// Buffers an entry; drops it (and counts it) when the buffer is full. Never blocks.
    func enqueue(_ entry: Entry) {
        let size: Int
        switch entry {
        case .line: size = 256
        case .request(let r): size = 160 + r.route.utf8.count + r.requestID.utf8.count
        }
        enum Outcome { case queued, schedule, dropped((@Sendable (Int) -> Void)?) }
        let outcome = state.withLock { s -> Outcome in
            guard s.entries.count < Self.maxEntries, s.bytes + size <= Self.maxBytes else { return .dropped(s.onDrop) }
            s.entries.append((entry, LogLineWriter.now()))
            s.bytes += size
            defer { s.scheduled = true }
            return s.scheduled ? .queued : .schedule
        }
        switch outcome {
        case .queued: break
        // Lines gather for a few milliseconds and go out in one write: waking the writer for
        // every line would cost each request a context switch.
        case .schedule: queue.asyncAfter(deadline: .now() + Self.batchDelay) { self.drain() }
        case .dropped(let onDrop): onDrop?(1)
        }
    }

    /// Writes everything buffered before returning (at exit), waiting at most `timeout` for a
    /// standard error that does not drain: a blocked stderr must not keep the process alive.
    func flush(waitingAtMost timeout: DispatchTimeInterval = .seconds(2)) {
        let done = DispatchSemaphore(value: 0)
        queue.async {
            self.drain()
            done.signal()
        }
        _ = done.wait(timeout: .now() + timeout)
    }

    private func drain() {
        let (entries, format, label) = state.withLock { s in
            defer {
                s.entries.removeAll(keepingCapacity: true)
                s.bytes = 0
                s.scheduled = false
            }
            return (s.entries, s.format, s.requestLabel)
        }
        guard !entries.isEmpty else { return }
        var batch: [UInt8] = []
        batch.reserveCapacity(entries.count * 200)
        for (entry, time) in entries {
            switch entry {
            case .line(let format): format(&batch, time)
            case .request(let record):
                LogLineWriter.appendRequestLine(record, format: format, at: time, label: label, to: &batch)
            }
        }
        LogLineWriter.writeNow(batch)
    }
}
