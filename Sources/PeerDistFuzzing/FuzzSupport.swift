/// Shared pieces of the fuzz targets.
///
/// Every target's `run` must return normally for any bytes. A broken invariant is a bug the
/// fuzzer should report, so it traps through `fuzzCheck` (fatalError, whose message -O builds keep), which libFuzzer sees as a crash.

/// Traps with `message` when `condition` is false (in release builds too).
@inline(__always)
func fuzzCheck(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
               file: StaticString = #fileID, line: UInt = #line) {
    if !condition() { fatalError("fuzz invariant broken: \(message())", file: file, line: line) }
}

/// Cuts an input into consecutive slices whose sizes alternate between two values taken from one
/// control byte (1 to 16 bytes each): byte 0x00 feeds one byte at a time.
struct Splitter {
    let first: Int
    let second: Int

    init(_ control: UInt8) {
        first = Int(control & 0x0F) + 1
        second = Int(control >> 4) + 1
    }

    /// The ends of the successive prefixes of a `count`-byte input, the last being `count`.
    func prefixEnds(_ count: Int) -> [Int] {
        var ends: [Int] = []
        var end = 0
        var useFirst = true
        while end < count {
            end = min(count, end + (useFirst ? first : second))
            useFirst.toggle()
            ends.append(end)
        }
        return ends
    }
}

/// The bytes of a buffer after skipping `n`, as an array (empty when shorter).
func bytes(_ buffer: UnsafeRawBufferPointer, droppingFirst n: Int) -> [UInt8] {
    buffer.count > n ? Array(buffer[n...]) : []
}

/// Percent-encodes every byte (the inverse `PercentDecoding.decode` must undo).
func percentEncodeAll(_ s: String) -> String {
    let hex = Array("0123456789ABCDEF".utf8)
    var out: [UInt8] = []
    for b in s.utf8 { out += [0x25, hex[Int(b >> 4)], hex[Int(b & 0x0F)]] }
    return String(decoding: out, as: UTF8.self)
}

/// `withUnsafeBytes` that keeps the closure's typed error (the standard library's rethrows `any Error`).
func withBytes<C: ContiguousCollection, R, E: Error>(
    _ bytes: C, _ body: (UnsafeRawBufferPointer) throws(E) -> R
) throws(E) -> R where C.Element == UInt8 {
    let result: Result<R, E> = bytes.withUnsafeBufferPointer { buf in
        do throws(E) { return .success(try body(UnsafeRawBufferPointer(buf))) } catch { return .failure(error) }
    }
    return try result.get()
}

/// Collections with contiguous storage (Array, ArraySlice).
protocol ContiguousCollection: Collection {
    func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Element>) throws -> R) rethrows -> R
}

extension Array: ContiguousCollection {}
extension ArraySlice: ContiguousCollection {}
