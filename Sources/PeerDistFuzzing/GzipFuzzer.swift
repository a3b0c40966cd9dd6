import HTTPWire

/// FuzzGzip: the gzip decoder with a small limit, and the compressor it must undo.
///
/// Input: byte 0 chooses the limit (`(byte + 1) * 256` bytes), byte 1 the piece size for
/// streaming (`byte + 1`), the rest is both a gzip member to decode and content to compress.
///
/// Checks: decoding never returns more than the limit; the streaming decoder fed in pieces, its
/// consumer pausing it every other chunk, gives exactly what the whole decode gives (or fails
/// where it fails); what it returns, compressed
/// again, decodes to itself; any bytes compressed decode to themselves with the limit set to
/// exactly their length, and one byte less refuses them.
public enum GzipFuzzer {
    public static func run(_ buffer: UnsafeRawBufferPointer) {
        guard buffer.count >= 2 else { return }
        let limit = (Int(buffer[0]) + 1) * 256
        let piece = Int(buffer[1]) + 1
        let input = bytes(buffer, droppingFirst: 2)
        let whole = Gzip.decompress(input, limit: limit)
        fuzzCheck(streamed(input, piece: piece, limit: limit) == whole, "decoding in pieces of \(piece) differs from decoding whole")
        if let inflated = whole {
            fuzzCheck(inflated.count <= limit, "inflated \(inflated.count) bytes past the limit \(limit)")
            roundTrip(inflated)
        }
        roundTrip(input)
    }

    /// Decodes in pieces; nil when decoding fails or the member does not end.
    static func streamed(_ input: [UInt8], piece: Int, limit: Int) -> [UInt8]? {
        let decoder = GzipDecoder(limit: limit, maxRatio: nil)
        var out: [UInt8] = []
        var start = 0
        repeat {
            let end = min(start + piece, input.count)
            // The consumer pauses after every other chunk, as a full body buffer would.
            var calls = 0
            let emit: (UnsafeRawBufferPointer) -> Bool = { chunk in
                out.append(contentsOf: chunk)
                calls += 1
                return calls % 2 == 1
            }
            var failure = input[start..<end].withUnsafeBytes { decoder.decode($0, emit: emit) }
            while failure == nil, decoder.isPaused { failure = decoder.resume(emit: emit) }
            if failure != nil { return nil }
            fuzzCheck(out.count <= limit, "the streaming decoder passed its limit")
            start = end
        } while start < input.count
        return decoder.finished ? out : nil
    }

    static func roundTrip(_ content: [UInt8]) {
        guard let compressed = Gzip.compress(content) else {
            fatalError("fuzz invariant broken: \(content.count) bytes do not compress")
        }
        fuzzCheck(Gzip.decompress(compressed, limit: content.count) == content, "\(content.count) bytes do not round-trip")
        if !content.isEmpty {
            fuzzCheck(Gzip.decompress(compressed, limit: content.count - 1) == nil, "a limit one byte short still inflated")
        }
    }
}
