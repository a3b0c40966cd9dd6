import CZlib

/// gzip (RFC 1952) through zlib, for whole bodies held in memory (JSON, YAML, problem+json).
/// The `z_stream` lives on the heap: zlib keeps a pointer back to it, so it must not move.
public enum Gzip {
    /// Compresses `bytes`; nil if zlib fails (the caller then sends them uncompressed).
    public static func compress(_ bytes: [UInt8], level: Int32 = 6) -> [UInt8]? {
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        defer { stream.deallocate() }
        guard peerdist_deflate_init_gzip(stream, level) == Z_OK else { return nil }
        defer { deflateEnd(stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(stream, uLong(bytes.count))) + 32)
        let status: Int32 = bytes.withUnsafeBytes { input in
            output.withUnsafeMutableBytes { out in
                stream.pointee.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
                stream.pointee.avail_in = uInt(input.count)
                stream.pointee.next_out = out.bindMemory(to: Bytef.self).baseAddress
                stream.pointee.avail_out = uInt(out.count)
                return deflate(stream, Z_FINISH)
            }
        }
        guard status == Z_STREAM_END else { return nil }
        output.removeLast(Int(stream.pointee.avail_out))
        return output
    }

    /// Decompresses a whole gzip member; nil if it is malformed, has trailing bytes, or inflates
    /// past `limit` bytes.
    public static func decompress(_ bytes: [UInt8], limit: Int = 64 << 20) -> [UInt8]? {
        let decoder = GzipDecoder(limit: limit, maxRatio: nil)
        var result: [UInt8] = []
        let failure = bytes.withUnsafeBytes { input in
            decoder.decode(input) { chunk in
                result.append(contentsOf: chunk)
                return true
            }
        }
        return failure == nil && decoder.finished ? result : nil
    }
}

/// Inflates one gzip member as its bytes arrive (a request body), bounded in what it produces
/// and in its ratio to what it was given, so that a decompression bomb is refused long before it
/// is inflated. It follows its consumer's backpressure: when `emit` asks to stop, inflating stops
/// (what was given and not yet inflated is kept) until `resume`. So its memory is one 64 KiB
/// output chunk and the input given while paused.
public final class GzipDecoder {
    /// Why decoding stopped.
    public enum Failure: Error, Sendable {
        /// Not gzip, corrupt, or bytes after the end of the member.
        case malformed
        /// Past the size limit, or inflating more than `maxRatio` times its input.
        case tooLarge
    }

    private let stream: UnsafeMutablePointer<z_stream>
    private var initialized = false
    private let limit: Int
    private let maxRatio: Int?
    /// Output below which the ratio is not judged (small documents compress very well).
    public static let ratioFloor = 1 << 20
    private let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 1)
    /// Bytes inflated from, and bytes produced, so far.
    public private(set) var consumed = 0
    public private(set) var produced = 0
    /// Whether the member has ended.
    public private(set) var finished = false
    /// Whether the consumer asked to stop: `resume` goes on.
    public private(set) var isPaused = false
    /// Input given and not yet inflated (kept while paused).
    private var pending: [UInt8] = []

    /// Creates a decoder.
    /// - Parameters:
    ///   - limit: most bytes it may produce.
    ///   - maxRatio: most bytes produced per byte given (past `ratioFloor`); nil = no bound.
    public init(limit: Int, maxRatio: Int? = 100) {
        self.limit = limit
        self.maxRatio = maxRatio.map { max(1, $0) }
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        initialized = peerdist_inflate_init_gzip(stream) == Z_OK
    }

    deinit {
        if initialized { inflateEnd(stream) }
        stream.deallocate()
        chunk.deallocate()
    }

    /// Inflates `input`, handing each output chunk to `emit` (valid during the call only); when
    /// `emit` returns false, inflating stops and the rest waits for `resume`. While paused, input
    /// given is kept for then.
    /// - Returns: nil while all is well (`finished` says whether the member has ended), else why
    ///   decoding stopped; the decoder is then unusable.
    public func decode(_ input: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) -> Bool) -> Failure? {
        guard initialized else { return .malformed }
        if isPaused {
            pending.append(contentsOf: input)
            return nil
        }
        return inflateSome(input, emit: emit)
    }

    /// Goes on after `emit` asked to stop, with the input kept meanwhile.
    public func resume(emit: (UnsafeRawBufferPointer) -> Bool) -> Failure? {
        guard initialized, isPaused else { return nil }
        isPaused = false
        let input = pending
        pending = []
        return input.withUnsafeBytes { inflateSome($0, emit: emit) }
    }

    private func inflateSome(_ input: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) -> Bool) -> Failure? {
        if finished { return input.isEmpty ? nil : .malformed }
        var none: UInt8 = 0
        return withUnsafeMutablePointer(to: &none) { empty -> Failure? in
            stream.pointee.next_in = input.baseAddress.map { UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: Bytef.self)) } ?? empty
            stream.pointee.avail_in = uInt(input.count)
            defer { consumed += input.count - Int(stream.pointee.avail_in) }
            while true {
                stream.pointee.next_out = chunk.baseAddress?.assumingMemoryBound(to: Bytef.self)
                stream.pointee.avail_out = uInt(chunk.count)
                let status = inflate(stream, Z_NO_FLUSH)
                let n = chunk.count - Int(stream.pointee.avail_out)
                produced += n
                if produced > limit { return .tooLarge }
                if let maxRatio, produced > Self.ratioFloor,
                   produced / maxRatio > consumed + input.count - Int(stream.pointee.avail_in) {
                    return .tooLarge
                }
                let goOn = n > 0 ? emit(UnsafeRawBufferPointer(rebasing: chunk[0..<n])) : true
                switch status {
                case Z_STREAM_END:
                    finished = true
                    return stream.pointee.avail_in == 0 ? nil : .malformed
                case Z_OK, Z_BUF_ERROR:
                    if !goOn {
                        isPaused = true
                        let left = Int(stream.pointee.avail_in)
                        if left > 0, let base = input.baseAddress {
                            pending = Array(UnsafeRawBufferPointer(start: base + (input.count - left), count: left))
                        }
                        return nil
                    }
                    // Done with this input: it is used up and zlib holds no more output.
                    if status == Z_BUF_ERROR || (stream.pointee.avail_in == 0 && stream.pointee.avail_out != 0) { return nil }
                default:
                    return .malformed
                }
            }
        }
    }
}
