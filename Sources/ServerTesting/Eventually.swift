/// Polls `condition` every few milliseconds until it holds or `timeout` passes; returns its last
/// value. For tests that observe another thread's effect without a callback to await.
public func eventually(timeout: Duration = TestTimeout.mustHappen, _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return condition()
}

/// Default bounds of the test clients' waits.
public enum TestTimeout {
    /// How long a test waits by default for what must happen (an answer, a close, a condition):
    /// a bound against a hung test, not a claim about speed, since a two-core machine running the
    /// whole suite can starve a test for seconds. A test that expects silence passes its own short
    /// timeout.
    public static let mustHappen: Duration = .seconds(30)
}
