extension PeerDistEngine {
    /// The first checks of every call under an instance, in the contract's order: policy
    /// disabled → 1260; service unavailable → 4065; unknown instance → 6. Lets a caller that
    /// validates its own parameters do so only after these (API.md, order of checks).
    /// - Throws: `EngineError` with one of those codes.
    public func checkCall(instance: String) throws(EngineError) {
        _ = try locked { (s: inout EngineState) throws(EngineError) -> Bool in
            _ = try s.instanceForCall(instance)
            return true
        }
    }
}
