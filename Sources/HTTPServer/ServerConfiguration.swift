import HTTP2Wire
import HTTPWire

/// Every limit and timeout of the HTTP server, in one place. Each limit names the status it answers.
public struct ServerConfiguration: Sendable {
    /// Address to bind (numeric IPv4/IPv6 or a host name).
    public var host: String = "127.0.0.1"
    /// Port to bind; 0 picks a free one.
    public var port: Int = 8080
    /// Listen backlog.
    public var backlog: Int = 4_096
    /// Serial worker queues driving connections; 0 = one per active processor.
    public var workerCount: Int = 0
    /// Open connections at most; at the cap the server stops accepting until one closes.
    public var maxConnections: Int = 10_000
    /// Largest request head (431), header count (431), request-target (414), trailers (431).
    public var parserLimits = HTTPWireLimits()
    /// Largest request body for routes that buffer their body (413). Routes that stream a body
    /// (content uploads) bound it themselves.
    public var maxBodySize: Int = 1_048_576
    /// Largest unread body the server will read and discard to keep a connection alive after an
    /// early answer; a larger one closes the connection instead.
    public var maxDrainBytes: Int = 1_048_576
    /// Bytes of pipelined input buffered while a request is in flight before reading pauses.
    public var maxPipelinedBytes: Int = 65_536
    /// Body bytes buffered between the socket and a streaming handler before reading pauses (it
    /// resumes at half). Four of the worker's 256 KiB reads: at one read, a handler that fell a
    /// single read behind (storing a window of an AddData, say) paused and resumed the socket
    /// about every other read, and an AddData of 1 GiB took 11,000 context switches instead of
    /// 6,200 and about 5 % less throughput.
    public var streamingBodyBuffer: Int = 1_048_576
    /// Request-body bytes one HTTP/2 connection holds for its handlers at most (buffered bodies
    /// not yet complete, streamed bytes not yet read). Flow-control credit is held back once
    /// they pass the cap less the connection window (what a peer may send uncredited), until
    /// handlers take bytes; so the bound holds (or is the connection window, if that is larger).
    /// Bodies stalled under it are cut by `bodyTimeout` and `minBodyDataRate`.
    public var maxBufferedBodyPerConnection: Int = 4_194_304
    /// Time allowed from the first byte of a head to its end (408, slowloris defence).
    public var headerTimeout: Duration = .seconds(10)
    /// Time allowed between two reads of a request body (408).
    public var bodyTimeout: Duration = .seconds(30)
    /// Slowest request body accepted, in bytes per second averaged from its first byte, once
    /// `minBodyDataRateGrace` has passed (408; Kestrel's MinRequestBodyDataRate). Time during
    /// which reading is paused for the handler does not count. 0 turns the check off.
    public var minBodyDataRate: Int = 240
    /// Time a request body is given before its minimum data rate is checked.
    public var minBodyDataRateGrace: Duration = .seconds(5)
    /// A 429 answer is held this long before it is sent: a client that retries at once, ignoring
    /// `Retry-After`, is slowed to a few requests a second per connection instead of being
    /// refused at full speed, so a principal hammering its quota costs the others little CPU.
    /// Zero sends 429s at once.
    public var tooManyRequestsDelay: Duration = .milliseconds(100)
    /// 401 and 403 answers one client address gets in `refusalWindow` before further ones are
    /// held `tooManyRequestsDelay`, as 429s are, so that tokens cannot be guessed at full speed.
    /// Zero never holds them.
    public var refusalsBeforeDelay: Int = 20
    /// The window `refusalsBeforeDelay` counts in.
    public var refusalWindow: Duration = .seconds(10)
    /// Client addresses whose refusals are counted at once; with that many in their window,
    /// refusals to a new address are held.
    public var maxRefusalAddresses: Int = 4_096
    /// Time an idle keep-alive connection is kept open between requests.
    public var idleTimeout: Duration = .seconds(60)
    /// Write-stall timeout: a response the client takes no byte of for this long drops the
    /// connection (progress, however slow, re-arms it).
    public var writeTimeout: Duration = .seconds(30)
    /// After a final answer, how long the server keeps reading and discarding what the client
    /// still sends before closing, so the answer is not lost to a reset (RFC 9112 §9.6).
    public var closeLinger: Duration = .seconds(2)
    /// Most bytes a gzip request body may inflate to per byte received, past 1 MiB inflated (413;
    /// a decompression bomb is refused as it inflates, never held whole).
    public var maxInflationRatio: Int = 100
    /// Smallest JSON/YAML/text response body compressed with gzip when the client accepts it;
    /// 0 turns compression off.
    public var compressionMinimumBytes: Int = 1_024
    /// HTTP/2's bounds: concurrent streams, header lists and blocks, reset, control-frame and
    /// empty-frame rates, windows and buffered bytes. Its idle timeout and flow-control stall
    /// default to `idleTimeout` and `writeTimeout`.
    public var http2 = HTTP2Limits()
    /// Time a graceful drain waits for requests in flight before closing what is left.
    public var drainTimeout: Duration = .seconds(10)
    /// `Retry-After` seconds sent with 503 while draining.
    public var drainRetryAfterSeconds: Int = 5

    /// The defaults.
    public init() {}

    /// The HTTP/2 bounds with the server's idle and write-stall timeouts filled in.
    var http2Limits: HTTP2Limits {
        var limits = http2
        limits.idleTimeout = limits.idleTimeout ?? idleTimeout
        limits.flowControlStallTimeout = limits.flowControlStallTimeout ?? writeTimeout
        return limits
    }
}

/// The parser limits, under the server's name.
public typealias HTTPWireLimits = HTTP1Limits
