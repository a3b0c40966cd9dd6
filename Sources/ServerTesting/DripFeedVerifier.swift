import HTTPWire

/// Feeds a request to the head parser and the body framers whole, one byte at a time, and split
/// at every index, and checks that every feeding gives the same result (NIO's
/// ByteToMessageDecoderVerifier idea).
public enum DripFeedVerifier {
    /// What parsing one input produced.
    public enum Outcome: Equatable, Sendable, CustomStringConvertible {
        /// Parsed requests: method, target, body bytes; then the leftover count.
        case parsed([ParsedRequest])
        /// A parse error with its status.
        case failed(status: Int)
        /// Input ended inside a request.
        case incomplete([ParsedRequest])

        public var description: String {
            switch self {
            case .parsed(let r): "parsed(\(r))"
            case .failed(let s): "failed(\(s))"
            case .incomplete(let r): "incomplete(\(r))"
            }
        }
    }

    /// One request as the verifier reconstructs it.
    public struct ParsedRequest: Equatable, Sendable, CustomStringConvertible {
        public var method: String
        public var target: String
        public var fields: [String]
        public var body: [UInt8]
        public var keepAlive: Bool
        public var description: String { "\(method) \(target) fields=\(fields.count) body=\(body.count) keepAlive=\(keepAlive)" }
    }

    /// Parses `input` fed in the given slices.
    public static func run(_ input: [UInt8], slices: [Range<Int>], limits: HTTP1Limits = HTTP1Limits()) -> Outcome {
        var parser = RequestHeadParser(limits: limits)
        var buffer: [UInt8] = []
        var done: [ParsedRequest] = []
        var current: ParsedRequest?
        var framing = BodyState.none
        for slice in slices {
            buffer.append(contentsOf: input[slice])
            while !buffer.isEmpty {
                if current == nil {
                    do {
                        let result = try buffer.withUnsafeBytes { buf throws(HTTP1ParseError) in try parser.parse(buf) }
                        guard case .complete(let head, let consumed) = result else { break }
                        buffer.removeFirst(consumed)
                        parser.reset()
                        current = ParsedRequest(
                            method: head.method.rawValue, target: head.target,
                            fields: head.fields.map { "\($0.name): \($0.value)" }, body: [], keepAlive: head.keepAlive
                        )
                        switch head.framing {
                        case .none, .length(0): framing = .none
                        case .length(let n): framing = .length(n)
                        case .chunked: framing = .chunked(ChunkedDecoder(maxTrailerBytes: limits.maxTrailerBytes))
                        }
                    } catch {
                        return .failed(status: (error as? HTTP1ParseError)?.status ?? 0)
                    }
                }
                guard var request = current else { break }
                switch framing {
                case .none:
                    break
                case .length(let n):
                    let take = Int(min(UInt64(buffer.count), n))
                    request.body.append(contentsOf: buffer[0..<take])
                    buffer.removeFirst(take)
                    framing = take == Int(n) ? .none : .length(n - UInt64(take))
                case .chunked(var decoder):
                    do {
                        var body = request.body
                        let progress = try buffer.withUnsafeBytes { buf throws(HTTP1ParseError) in
                            try decoder.decode(buf) { body.append(contentsOf: $0) }
                        }
                        request.body = body
                        buffer.removeFirst(progress.consumed)
                        framing = progress.finished ? .none : .chunked(decoder)
                    } catch {
                        return .failed(status: (error as? HTTP1ParseError)?.status ?? 0)
                    }
                }
                if case .none = framing {
                    done.append(request)
                    current = nil
                } else {
                    current = request
                    break
                }
            }
        }
        if let current { return .incomplete(done + [current]) }
        return buffer.isEmpty ? .parsed(done) : .incomplete(done)
    }

    private enum BodyState { case none, length(UInt64), chunked(ChunkedDecoder) }

    /// Every feeding of `input` that the verifier compares: whole, byte by byte, and split in
    /// two at every index.
    public static func feedings(of input: [UInt8]) -> [[Range<Int>]] {
        let n = input.count
        var all: [[Range<Int>]] = [[0..<n], (0..<n).map { $0..<($0 + 1) }]
        if n > 1 { for i in 1..<n { all.append([0..<i, i..<n]) } }
        return all
    }

    /// Runs every feeding and returns the outcome of the whole feed together with the first
    /// feeding (if any) that disagreed with it.
    public static func verify(_ input: [UInt8], limits: HTTP1Limits = HTTP1Limits()) -> (whole: Outcome, mismatch: (feeding: [Range<Int>], outcome: Outcome)?) {
        let feedings = feedings(of: input)
        let whole = run(input, slices: feedings[0], limits: limits)
        for feeding in feedings.dropFirst() {
            let outcome = run(input, slices: feeding, limits: limits)
            if outcome != whole { return (whole, (feeding, outcome)) }
        }
        return (whole, nil)
    }
}
