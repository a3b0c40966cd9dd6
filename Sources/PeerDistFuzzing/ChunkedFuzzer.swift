import HTTPWire

/// FuzzChunked: the chunked transfer-coding decoder.
///
/// Input: byte 0 chooses the trailer limit (bit 7: 64 bytes, else 4,096), byte 1 the split
/// pattern; the rest is a chunked body and whatever follows it.
///
/// Checks: decoding whole and decoding in slices (each slice's unused bytes carried into the
/// next, as a connection's input buffer does) give the same data, the same end and the same
/// error; data handed out is a slice of the input and never more than it; an unfinished body
/// uses all of its input; the decoded data, chunked again, decodes to itself.
public enum ChunkedFuzzer {
    public static func run(_ buffer: UnsafeRawBufferPointer) {
        guard buffer.count >= 2 else { return }
        let maxTrailer = buffer[0] & 0x80 != 0 ? 64 : 4_096
        let splitter = Splitter(buffer[1])
        let input = bytes(buffer, droppingFirst: 2)
        let whole = decode(input, maxTrailer: maxTrailer, ends: [input.count])
        let split = decode(input, maxTrailer: maxTrailer, ends: splitter.prefixEnds(input.count))
        fuzzCheck(whole == split, "whole decoding \(whole) differs from split decoding \(split)")
        fuzzCheck(whole.data.count <= input.count, "more data than input")
        if whole.finished {
            var rechunked: [UInt8] = []
            if !whole.data.isEmpty {
                rechunked += String(whole.data.count, radix: 16).utf8
                rechunked += "\r\n".utf8
                rechunked += whole.data
                rechunked += "\r\n".utf8
            }
            rechunked += "0\r\n\r\n".utf8
            let again = decode(rechunked, maxTrailer: maxTrailer, ends: [rechunked.count])
            fuzzCheck(again.finished && again.error == nil && again.data == whole.data && again.consumed == rechunked.count,
                      "decoded data, chunked again, decodes to \(again)")
        }
    }

    struct Result: Equatable, CustomStringConvertible {
        var data: [UInt8] = []
        var consumed = 0
        var finished = false
        var error: HTTP1ParseError?

        var description: String { "(\(data.count) data bytes, \(consumed) consumed, finished \(finished), error \(String(describing: error)))" }
    }

    /// Decodes `input` as it arrives in prefixes ending at `ends`.
    static func decode(_ input: [UInt8], maxTrailer: Int, ends: [Int]) -> Result {
        var decoder = ChunkedDecoder(maxTrailerBytes: maxTrailer)
        var result = Result()
        var start = 0
        for end in ends where end > start {
            do throws(HTTP1ParseError) {
                let progress = try withBytes(input[start..<end]) { slice throws(HTTP1ParseError) in
                    try decoder.decode(slice) { data throws(HTTP1ParseError) in
                        fuzzCheck(data.count <= slice.count, "a data run longer than its slice")
                        if let base = data.baseAddress, let sliceBase = slice.baseAddress {
                            fuzzCheck(base >= sliceBase && base + data.count <= sliceBase + slice.count, "data outside its slice")
                        }
                        result.data += data
                    }
                }
                fuzzCheck(progress.consumed >= 0 && progress.consumed <= end - start, "consumed \(progress.consumed) of \(end - start)")
                fuzzCheck(progress.finished == decoder.isFinished, "finished disagrees with isFinished")
                if !progress.finished { fuzzCheck(progress.consumed == end - start, "an unfinished body left input unused") }
                start += progress.consumed
                result.consumed = start
                if progress.finished {
                    result.finished = true
                    return result
                }
            } catch {
                result.error = error
                result.consumed = 0  // where a slice failed depends on the slicing
                return result
            }
        }
        return result
    }
}
