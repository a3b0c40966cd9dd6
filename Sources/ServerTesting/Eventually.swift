/// Polls `condition` every few milliseconds until it holds or `timeout` passes; returns its last
/// value. For tests that observe another thread's effect without a callback to await.
public func eventually(timeout: Duration = .seconds(5), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return condition()
}
