/// A resumable decoder for the chunked transfer coding (RFC 9112 §7.1), after `phr_decode_chunked`.
///
/// Feed it any slice of the body as it arrives; it hands back the data inside the chunks as
/// sub-ranges of what you gave it and says when the body (trailers included) has ended.
public struct ChunkedDecoder: Sendable {
    private enum State: Sendable {
        case size(value: UInt64, digits: Int)
        case extensions(size: UInt64)
        case sizeLF(size: UInt64)
        case data(remaining: UInt64)
        case dataCR
        case dataLF
        case trailerLineStart
        case trailerLine
        case trailerLF(endOfTrailers: Bool)
        case done
    }

    /// The result of decoding one slice.
    public struct Progress: Sendable {
        /// Bytes of the input that belong to the chunked body.
        public var consumed: Int
        /// Whether the last chunk and the trailers have been read.
        public var finished: Bool
    }

    private var state: State = .size(value: 0, digits: 0)
    private var trailerBytes = 0
    private var extensionBytes = 0
    private let maxTrailerBytes: Int

    /// Largest number of hex digits accepted in a chunk size (2^60 bytes is plenty).
    private static let maxSizeDigits = 15
    /// Largest chunk-extension section accepted per chunk.
    private static let maxExtensionBytes = 1_024

    /// Creates a decoder.
    /// - Parameter maxTrailerBytes: the largest trailer section accepted (431 beyond).
    public init(maxTrailerBytes: Int) { self.maxTrailerBytes = maxTrailerBytes }

    /// Whether the whole body has been decoded.
    public var isFinished: Bool { if case .done = state { true } else { false } }

    /// Decodes as much of `input` as possible.
    /// - Parameters:
    ///   - input: the next bytes of the body.
    ///   - onData: called with each run of chunk data, a slice of `input`, in order.
    /// - Returns: how many bytes were used, and whether the body ended (the rest belongs to the next request).
    /// - Throws: `HTTP1ParseError` for a malformed body.
    public mutating func decode(
        _ input: UnsafeRawBufferPointer, onData: (UnsafeRawBufferPointer) throws(HTTP1ParseError) -> Void
    ) throws(HTTP1ParseError) -> Progress {
        var i = 0
        let n = input.count
        while i < n {
            let byte = input[i]
            switch state {
            case .size(let value, let digits):
                if let hex = Self.hexValue(byte) {
                    guard digits < Self.maxSizeDigits else { throw .badRequest("chunk size too large") }
                    state = .size(value: value << 4 | UInt64(hex), digits: digits + 1)
                    i += 1
                } else if digits == 0 {
                    throw .badRequest("malformed chunk size")
                } else if byte == 0x0D {
                    state = .sizeLF(size: value)
                    i += 1
                } else if byte == 0x3B || byte == 0x20 || byte == 0x09 {
                    extensionBytes = 0
                    state = .extensions(size: value)
                    i += 1
                } else {
                    throw .badRequest("malformed chunk size")
                }
            case .extensions(let size):
                if byte == 0x0D {
                    state = .sizeLF(size: size)
                } else if byte == 0x0A || (byte < 0x20 && byte != 0x09) || byte == 0x7F {
                    throw .badRequest("malformed chunk extension")
                } else {
                    extensionBytes += 1
                    if extensionBytes > Self.maxExtensionBytes { throw .badRequest("chunk extension too long") }
                }
                i += 1
            case .sizeLF(let size):
                guard byte == 0x0A else { throw .badRequest("chunk size line not ended by CRLF") }
                state = size == 0 ? .trailerLineStart : .data(remaining: size)
                i += 1
            case .data(let remaining):
                let take = Int(min(UInt64(n - i), remaining))
                try onData(UnsafeRawBufferPointer(rebasing: input[i..<i + take]))
                i += take
                state = remaining == UInt64(take) ? .dataCR : .data(remaining: remaining - UInt64(take))
            case .dataCR:
                guard byte == 0x0D else { throw .badRequest("chunk data not followed by CRLF") }
                state = .dataLF
                i += 1
            case .dataLF:
                guard byte == 0x0A else { throw .badRequest("chunk data not followed by CRLF") }
                state = .size(value: 0, digits: 0)
                i += 1
            case .trailerLineStart:
                if byte == 0x0D {
                    state = .trailerLF(endOfTrailers: true)
                } else if byte == 0x20 || byte == 0x09 || byte == 0x0A {
                    throw .badRequest("malformed trailer field")
                } else {
                    state = .trailerLine
                    try countTrailer()
                }
                i += 1
            case .trailerLine:
                if byte == 0x0D {
                    state = .trailerLF(endOfTrailers: false)
                } else if byte == 0x0A || (byte < 0x20 && byte != 0x09) {
                    throw .badRequest("malformed trailer field")
                } else {
                    try countTrailer()
                }
                i += 1
            case .trailerLF(let endOfTrailers):
                guard byte == 0x0A else { throw .badRequest("bare CR in trailers") }
                i += 1
                if endOfTrailers {
                    state = .done
                    return Progress(consumed: i, finished: true)
                }
                state = .trailerLineStart
            case .done:
                return Progress(consumed: i, finished: true)
            }
        }
        return Progress(consumed: i, finished: isFinished)
    }

    private mutating func countTrailer() throws(HTTP1ParseError) {
        trailerBytes += 1
        if trailerBytes > maxTrailerBytes { throw .trailersTooLarge }
    }

    @inline(__always)
    private static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: b - 0x30
        case 0x41...0x46: b - 0x41 + 10
        case 0x61...0x66: b - 0x61 + 10
        default: nil
        }
    }
}
