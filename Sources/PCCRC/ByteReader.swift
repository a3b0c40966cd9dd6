/// Bounds-checked cursor over serialized content information. Every read checks the remaining
/// length first, so a length field can never make the parser read past the end or over-allocate.
struct ByteReader {
    // MARK: - Properties

    private let bytes: [UInt8]
    private(set) var position = 0

    /// Bytes left after the cursor.
    var remaining: Int { bytes.count - position }

    // MARK: - Init

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    // MARK: - API

    mutating func u8(_ field: String) throws(PCCRCError) -> UInt8 {
        try need(1, field)
        defer { position += 1 }
        return bytes[position]
    }

    mutating func u16LE(_ field: String) throws(PCCRCError) -> UInt16 {
        UInt16(truncatingIfNeeded: try integer(2, bigEndian: false, field))
    }

    mutating func u32LE(_ field: String) throws(PCCRCError) -> UInt32 {
        UInt32(truncatingIfNeeded: try integer(4, bigEndian: false, field))
    }

    mutating func u64LE(_ field: String) throws(PCCRCError) -> UInt64 {
        try integer(8, bigEndian: false, field)
    }

    mutating func u32BE(_ field: String) throws(PCCRCError) -> UInt32 {
        UInt32(truncatingIfNeeded: try integer(4, bigEndian: true, field))
    }

    mutating func u64BE(_ field: String) throws(PCCRCError) -> UInt64 {
        try integer(8, bigEndian: true, field)
    }

    mutating func bytes(_ count: Int, _ field: String) throws(PCCRCError) -> [UInt8] {
        try need(count, field)
        defer { position += count }
        return Array(bytes[position..<(position + count)])
    }

    /// Throws unless `count` more bytes are available.
    func need(_ count: Int, _ field: String) throws(PCCRCError) {
        guard count >= 0, count <= remaining else {
            throw .cannotParse("truncated at offset \(position): \(field) needs \(count) bytes, \(remaining) left")
        }
    }

    /// Throws if anything follows the structure.
    func expectEnd() throws(PCCRCError) {
        guard remaining == 0 else {
            throw .cannotParse("\(remaining) trailing bytes at offset \(position)")
        }
    }

    // MARK: - Private

    private mutating func integer(_ size: Int, bigEndian: Bool, _ field: String) throws(PCCRCError) -> UInt64 {
        try need(size, field)
        var value: UInt64 = 0
        for i in 0..<size {
            let byte = UInt64(bytes[position + (bigEndian ? i : size - 1 - i)])
            value = (value << 8) | byte
        }
        position += size
        return value
    }
}
