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

    /// Decompresses a gzip member; nil if it is malformed or inflates past `limit` bytes.
    public static func decompress(_ bytes: [UInt8], limit: Int = 64 << 20) -> [UInt8]? {
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        defer { stream.deallocate() }
        guard peerdist_inflate_init_gzip(stream) == Z_OK else { return nil }
        defer { inflateEnd(stream) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        return bytes.withUnsafeBytes { input -> [UInt8]? in
            stream.pointee.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
            stream.pointee.avail_in = uInt(input.count)
            while true {
                let status: Int32 = chunk.withUnsafeMutableBytes { out in
                    stream.pointee.next_out = out.bindMemory(to: Bytef.self).baseAddress
                    stream.pointee.avail_out = uInt(out.count)
                    return inflate(stream, Z_NO_FLUSH)
                }
                result.append(contentsOf: chunk[0..<(chunk.count - Int(stream.pointee.avail_out))])
                if result.count > limit { return nil }
                if status == Z_STREAM_END { return result }
                guard status == Z_OK else { return nil }
            }
        }
    }
}
