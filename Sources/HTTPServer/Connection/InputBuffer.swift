/// The bytes a connection has received and not yet consumed. Consuming from the front only moves
/// an offset; the storage is compacted when the consumed part is at least half of it, so a burst
/// of pipelined requests costs linear, not quadratic, copying.
struct InputBuffer {
    private var storage: [UInt8] = []
    private var start = 0

    /// Unconsumed bytes.
    var count: Int { storage.count - start }
    var isEmpty: Bool { start == storage.count }

    /// Appends received bytes.
    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if start > 0 && start >= storage.count / 2 {
            storage.removeFirst(start)
            start = 0
        }
        storage.append(contentsOf: bytes)
    }

    /// Drops `n` bytes from the front.
    mutating func consume(_ n: Int) {
        start = min(storage.count, start + n)
        if start == storage.count {
            storage.removeAll(keepingCapacity: storage.capacity <= 65_536)
            start = 0
        }
    }

    /// Drops everything.
    mutating func removeAll() {
        storage.removeAll()
        start = 0
    }

    /// The unconsumed bytes, borrowed for the duration of `body`.
    func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        let result: Result<R, E> = storage.withUnsafeBytes { raw in
            do throws(E) {
                return .success(try body(UnsafeRawBufferPointer(rebasing: raw[start...])))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }
}
