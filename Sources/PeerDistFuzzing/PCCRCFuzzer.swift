import PCCRC
import PeerDistEngine

/// FuzzPCCRC: the MS-PCCRC V1 and V2 content-information parsers, and the encoder behind them.
///
/// Input: byte 0 chooses the mode.
/// - Even: the rest is content information to parse. A parsed V1 structure serialises to exactly
///   the input; for either version, parse → serialise → parse gives the same structure and the
///   same bytes again, and its content range can be computed. What parses is also laid out as a
///   retrieval lays it out (`RetrievalLayout`): entries in order without overlap, a read range
///   within them, and lookups that agree with a linear search.
/// - Odd: bit 1 chooses V2, bits 2-3 the V1 hash algorithm; bytes 1-8 an offset and a length
///   (two little-endian UInt32), the rest is the content. The content is hashed and encoded for
///   that range: encoding refuses exactly the ranges outside the content, and what it writes
///   parses, describes that range and serialises back to itself.
public enum PCCRCFuzzer {
    static let secret = ServerSecret(keyBytes: Array("fuzzing secret bytes".utf8))

    public static func run(_ buffer: UnsafeRawBufferPointer) {
        guard let mode = buffer.first else { return }
        if mode & 1 == 0 {
            checkParse(bytes(buffer, droppingFirst: 1))
        } else {
            checkEncode(mode, buffer)
        }
    }

    static func checkParse(_ input: [UInt8]) {
        guard let parsed = try? ContentInformation.parse(input) else { return }
        _ = parsed.contentRange
        let written = parsed.serialize()
        if case .v1 = parsed { fuzzCheck(written == input, "V1 input does not serialise back to itself") }
        guard let again = try? ContentInformation.parse(written) else {
            fatalError("fuzz invariant broken: a parsed structure, serialised, does not parse")
        }
        fuzzCheck(again == parsed, "parse → serialise → parse changed the structure")
        fuzzCheck(again.serialize() == written, "serialisation is not stable")
        checkLayout(parsed)
    }

    /// The layout a retrieval makes of parsed content information (or its 4051), and its lookups.
    static func checkLayout(_ parsed: ParsedContentInformation) {
        guard case .success(let layout) = RetrievalLayout.make(parsed) else { return }
        let entries = layout.entries
        for (index, entry) in entries.enumerated() {
            fuzzCheck(entry.length > 0, "entry \(index) is empty")
            fuzzCheck(entry.start.addingReportingOverflow(UInt64(entry.length)).overflow == false, "entry \(index) overflows")
            if index > 0 { fuzzCheck(entries[index - 1].end <= entry.start, "entries \(index - 1) and \(index) overlap or are out of order") }
        }
        let covered = entries.last?.end ?? 0
        fuzzCheck(layout.readRange.upperBound <= covered, "the read range passes the entries")
        var probes: [UInt64] = [0, layout.readRange.lowerBound, layout.readRange.upperBound, layout.contentEnd, UInt64.max]
        for entry in entries.prefix(64) + entries.suffix(64) {
            probes += [entry.start, entry.end - 1, entry.end]
        }
        for offset in probes {
            let expected = entries.firstIndex { $0.start <= offset && offset < $0.end }
            fuzzCheck(layout.entryIndex(containing: offset) == expected, "entryIndex(containing: \(offset)) disagrees with a search")
            let cut = layout.boundary(atOrBefore: offset)
            fuzzCheck(cut <= offset, "boundary(atOrBefore: \(offset)) is past it")
            fuzzCheck(cut == offset || entries.contains { $0.start == cut }, "boundary(atOrBefore: \(offset)) is inside an entry")
        }
    }

    static func checkEncode(_ mode: UInt8, _ buffer: UnsafeRawBufferPointer) {
        guard buffer.count >= 9 else { return }
        let version: PCCRCVersion = mode & 2 != 0 ? .v2 : .v1
        let algorithm: V1HashAlgorithm = [.sha256, .sha384, .sha512, .sha256][Int(mode >> 2 & 3)]
        func u32(_ at: Int) -> UInt64 {
            (0..<4).reduce(UInt64(0)) { $0 | UInt64(buffer[at + $1]) << (8 * $1) }
        }
        let content = bytes(buffer, droppingFirst: 9)
        let total = UInt64(content.count)
        // Mostly ranges near the content's size, so that both valid and invalid ones occur.
        let offset = u32(1) % (total + 2)
        let length = u32(5) % (total + 2)
        let whole = offset == 0 && length == 0
        let valid = whole || (length > 0 && offset + length <= total)
        let hashes = ContentHashes.hashing(content, version: version, algorithm: algorithm)
        fuzzCheck(hashes.contentLength == total, "hashed length \(hashes.contentLength) of \(total) bytes")
        let encoded: [UInt8]
        do {
            encoded = try ContentInformation.encode(hashes, secret: secret, offset: offset, length: length)
        } catch {
            fuzzCheck(!valid, "encoding refused the valid range \(offset)+\(length) of \(total) bytes: \(error)")
            return
        }
        fuzzCheck(valid, "encoding accepted the range \(offset)+\(length) of \(total) bytes")
        let parsed: ParsedContentInformation
        do {
            parsed = try ContentInformation.parse(encoded)
        } catch {
            fatalError("fuzz invariant broken: encoded \(version) for \(offset)+\(length) of \(total) bytes does not parse: \(error)")
        }
        fuzzCheck(parsed.version == version, "encoded \(version), parsed \(parsed.version)")
        let expected = whole ? 0..<total : offset..<offset + length
        fuzzCheck(parsed.contentRange == expected,
                  "encoded \(version) for \(offset)+\(length) of \(total) bytes describes \(parsed.contentRange)")
        fuzzCheck(parsed.serialize() == encoded, "encoded structure does not serialise back to itself")
    }
}
