/// Counts events in a sliding window with constant memory: the window is split into buckets and
/// the count is the sum of the buckets not older than the window.
struct RateWindow {
    private static let bucketCount = 8
    private var buckets = [Int](repeating: 0, count: RateWindow.bucketCount)
    private var bucketStart: ContinuousClock.Instant?
    private var current = 0
    private let bucketWidth: Duration
    let limit: Int

    init(window: Duration, limit: Int) {
        let width = window / RateWindow.bucketCount
        bucketWidth = width > .zero ? width : .nanoseconds(1)
        self.limit = limit
    }

    /// Records one event at `now`; returns whether the count in the window is now past the limit.
    mutating func record(at now: ContinuousClock.Instant) -> Bool {
        advance(to: now)
        buckets[current] &+= 1
        return buckets.reduce(0, &+) > limit
    }

    private mutating func advance(to now: ContinuousClock.Instant) {
        guard let start = bucketStart else {
            bucketStart = now
            return
        }
        guard now >= start + bucketWidth else { return }
        let elapsed = (now - start) / bucketWidth  // whole buckets passed, as a Double
        let steps = elapsed >= Double(RateWindow.bucketCount) ? RateWindow.bucketCount : Int(elapsed)
        for _ in 0..<steps {
            current = (current + 1) % RateWindow.bucketCount
            buckets[current] = 0
        }
        bucketStart = steps == RateWindow.bucketCount ? now : start + bucketWidth * steps
    }
}
