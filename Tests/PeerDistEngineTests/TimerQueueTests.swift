import Foundation
import Synchronization
import Testing
@testable import PeerDistEngine

/// The production clock's timer heap: deadline order, cancellation, and a bounded heap.
@Suite struct TimerQueueTests {
    final class Log: Sendable {
        let fired = Mutex<[Int]>([])
        func append(_ n: Int) { fired.withLock { $0.append(n) } }
        var values: [Int] { fired.withLock { $0 } }
    }

    @Test func timersFireInDeadlineOrderAndCancelledOnesNever() async throws {
        let queue = TimerQueue()
        let log = Log()
        let now = ContinuousClock.now
        let done = AsyncStream<Void>.makeStream()
        _ = queue.schedule(at: now + .milliseconds(60)) { log.append(3); done.continuation.yield() }
        _ = queue.schedule(at: now + .milliseconds(20)) { log.append(1) }
        let cancelled = queue.schedule(at: now + .milliseconds(30)) { log.append(99) }
        _ = queue.schedule(at: now + .milliseconds(40)) { log.append(2) }
        queue.cancel(cancelled)
        queue.cancel(cancelled)  // idempotent
        var events = done.stream.makeAsyncIterator()
        _ = await events.next()
        #expect(log.values == [1, 2, 3])
        #expect(queue.count == 0)
    }

    @Test func aDeadlineAlreadyPassedFiresSoon() async {
        let queue = TimerQueue()
        let done = AsyncStream<Void>.makeStream()
        _ = queue.schedule(at: ContinuousClock.now - .seconds(5)) { done.continuation.yield() }
        var events = done.stream.makeAsyncIterator()
        _ = await events.next()
        #expect(queue.count == 0)
    }

    @Test func anEarlierTimerScheduledLaterRearmsTheDispatchTimer() async {
        let queue = TimerQueue()
        let log = Log()
        let done = AsyncStream<Void>.makeStream()
        let far = queue.schedule(at: ContinuousClock.now + .seconds(3_600)) { log.append(2) }
        _ = queue.schedule(at: ContinuousClock.now + .milliseconds(10)) { log.append(1); done.continuation.yield() }
        var events = done.stream.makeAsyncIterator()
        _ = await events.next()
        #expect(log.values == [1])
        #expect(queue.count == 1)
        queue.cancel(far)
        #expect(queue.count == 0)
    }

    /// Cancelled timers leave the heap before they come due: it never holds more than twice the
    /// live ones (plus a small floor), and a cancelled action is released at once.
    @Test func cancelledTimersDoNotAccumulate() {
        let queue = TimerQueue()
        let far = ContinuousClock.now + .seconds(3_600)
        let keep = (0..<10).map { _ in queue.schedule(at: far) {} }
        for _ in 0..<10_000 {
            let id = queue.schedule(at: far) {}
            queue.cancel(id)
        }
        #expect(queue.count == keep.count)
        #expect(queue.heapSlots <= max(64, 2 * keep.count) + 1)
        final class Token: Sendable {}
        weak var released: Token?
        do {
            let token = Token()
            released = token
            let id = queue.schedule(at: far) { _ = token }
            queue.cancel(id)
        }
        #expect(released == nil)
    }
}
