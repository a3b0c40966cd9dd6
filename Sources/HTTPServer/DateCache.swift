#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import HTTPWire
import Synchronization

/// The Date field value, formatted at most once per second (h2o's timestamp cache).
final class DateCache: Sendable {
    static let shared = DateCache()

    private struct Cached {
        var second = -1
        var text = ""
    }

    private let cached = Mutex(Cached())

    /// The current IMF-fixdate.
    func current() -> String {
        let now = Int(time(nil))
        return cached.withLock { c in
            if c.second != now {
                c.second = now
                c.text = HTTPDate.format(epochSeconds: now)
            }
            return c.text
        }
    }
}
