/// Appends fixed-size integers and raw bytes in the byte order of a content information version.
struct ByteWriter {
    // MARK: - Properties

    private(set) var bytes: [UInt8] = []

    // MARK: - Init

    init(capacity: Int) {
        bytes.reserveCapacity(capacity)
    }

    // MARK: - API

    mutating func u8(_ value: UInt8) {
        bytes.append(value)
    }

    mutating func u16LE(_ value: UInt16) {
        integer(UInt64(value), size: 2, bigEndian: false)
    }

    mutating func u32LE(_ value: UInt32) {
        integer(UInt64(value), size: 4, bigEndian: false)
    }

    mutating func u64LE(_ value: UInt64) {
        integer(value, size: 8, bigEndian: false)
    }

    mutating func u32BE(_ value: UInt32) {
        integer(UInt64(value), size: 4, bigEndian: true)
    }

    mutating func u64BE(_ value: UInt64) {
        integer(value, size: 8, bigEndian: true)
    }

    mutating func append(_ raw: [UInt8]) {
        bytes.append(contentsOf: raw)
    }

    // MARK: - Private

    private mutating func integer(_ value: UInt64, size: Int, bigEndian: Bool) {
        for i in 0..<size {
            let shift = UInt64(8 * (bigEndian ? size - 1 - i : i))
            bytes.append(UInt8(truncatingIfNeeded: value >> shift))
        }
    }
}
