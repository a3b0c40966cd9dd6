/// Parameter checks shared by the engine's calls (each failure is 87 `ERROR_INVALID_PARAMETER`).
enum Validation {
    /// Content identifiers are 1 to 1,024 bytes.
    static let maxContentIdBytes = 1_024
    /// Caller-chosen operation ids are 1 to 64 characters.
    static let maxOperationIdLength = 64

    static func contentId(_ bytes: [UInt8]) throws(EngineError) {
        guard (1...maxContentIdBytes).contains(bytes.count) else {
            throw .invalidParameter("content identifier must be 1 to \(maxContentIdBytes) bytes, got \(bytes.count)")
        }
    }

    /// `A-Za-z0-9._~-`, 1 to 64 characters.
    static func isValidOperationId(_ id: String) -> Bool {
        let utf8 = id.utf8
        guard (1...maxOperationIdLength).contains(utf8.count) else { return false }
        return utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"), UInt8(ascii: "-"):
                return true
            default:
                return false
            }
        }
    }

    static func operationId(_ id: String) throws(EngineError) {
        guard isValidOperationId(id) else {
            throw .invalidParameter("operation id must be 1 to 64 of A-Za-z0-9._~-")
        }
    }

    static func contentInfoVersion(_ version: Int) throws(EngineError) {
        guard version == 1 || version == 2 else {
            throw EngineError(.contentInfoVersionUnsupported, "content information version \(version) is not 1 or 2")
        }
    }
}
