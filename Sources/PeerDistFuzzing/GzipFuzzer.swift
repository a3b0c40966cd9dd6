import HTTPWire

/// FuzzGzip: the gzip decoder with a small limit, and the compressor it must undo.
///
/// Input: byte 0 chooses the limit (`(byte + 1) * 256` bytes), the rest is both a gzip member to
/// decode and content to compress.
///
/// Checks: decoding never returns more than the limit; what it returns, compressed again,
/// decodes to itself; any bytes compressed decode to themselves with the limit set to exactly
/// their length, and one byte less refuses them.
public enum GzipFuzzer {
    public static func run(_ buffer: UnsafeRawBufferPointer) {
        guard let control = buffer.first else { return }
        let limit = (Int(control) + 1) * 256
        let input = bytes(buffer, droppingFirst: 1)
        if let inflated = Gzip.decompress(input, limit: limit) {
            fuzzCheck(inflated.count <= limit, "inflated \(inflated.count) bytes past the limit \(limit)")
            roundTrip(inflated)
        }
        roundTrip(input)
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
