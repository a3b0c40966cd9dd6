import Synchronization

/// Counts the refusals of credentials (`Response.isAccessRefusal`: 401, and 403 for want of the
/// right token) each client address gets; past `limit` of them in one
/// `window`, further ones are held like a 429 (`ServerConfiguration.tooManyRequestsDelay`), so
/// that tokens cannot be guessed at full speed. At most `maxAddresses` are tracked: when the table
/// is full of addresses still in their window, refusals to a new address are held too.
final class RefusalPacer: Sendable {
    private struct Tally {
        var start: ContinuousClock.Instant
        var count: Int
    }

    private let limit: Int
    private let window: Duration
    private let maxAddresses: Int
    private let tallies = Mutex<[String: Tally]>([:])

    init(limit: Int, window: Duration, maxAddresses: Int) {
        self.limit = limit
        self.window = window
        self.maxAddresses = max(1, maxAddresses)
    }

    /// Counts a refusal to `peer`.
    /// - Returns: whether it is to be held.
    func record(peer: String?, now: ContinuousClock.Instant = .now) -> Bool {
        let key = peer ?? ""
        return tallies.withLock { tallies in
            if var tally = tallies[key] {
                if now - tally.start >= window { tally = Tally(start: now, count: 0) }
                tally.count += 1
                tallies[key] = tally
                return tally.count > limit
            }
            if tallies.count >= maxAddresses {
                tallies = tallies.filter { now - $0.value.start < window }
                guard tallies.count < maxAddresses else { return true }
            }
            tallies[key] = Tally(start: now, count: 1)
            return 1 > limit
        }
    }
}
