/// Every bound and default of the engine. Past a bound the engine throws `EngineError` with
/// `ERROR_NOT_ENOUGH_QUOTA` (1816, HTTP 429 with `Retry-After: quotaRetryAfterSeconds`) and a detail
/// naming the bound; nothing grows without limit.
public struct EngineLimits: Sendable, Hashable {
    // MARK: - Properties

    /// Instances open at once, across all principals (1816 past it). At least
    /// `instanceCapFactor` × `maxInstancesPerPrincipal` (`peerdistd` refuses less, and derives it
    /// when not given), so that no one principal can hold more than a quarter of it. Default 1,024.
    public var maxInstances: Int
    /// How many principals at their instance quota the global cap must hold at least.
    public static let instanceCapFactor = 4
    /// The least `maxInstances` the per-principal quota allows.
    public var smallestInstanceCap: Int {
        let (cap, overflow) = maxInstancesPerPrincipal.multipliedReportingOverflow(by: Self.instanceCapFactor)
        return overflow ? Int.max : cap
    }
    /// Instances one principal has open at once (1816 past it). Default 256.
    public var maxInstancesPerPrincipal: Int
    /// Pending operations of one principal, across its instances (1816 past it). Default 10,000.
    public var maxPendingOperationsPerPrincipal: Int
    /// Parked long-polls of one principal (port dequeues, operation and status waits; 1816 past
    /// it). Default 4,096.
    public var maxParkedWaitersPerPrincipal: Int
    /// Open handles of one principal: ports (`default` excepted), streams, content-information
    /// handles and retrievals across its instances (1816 past it). Default 4,096.
    public var maxOpenHandlesPerPrincipal: Int
    /// Upload bytes one principal may have in flight: every pending append may hold
    /// `appendWindowBytes` waiting to be hashed, and every pending AddData three such windows and
    /// a quarter (the one it gathers and two it stores); each reserves that much, or its declared
    /// length when smaller (1816 past it). Default 256 MiB (256 appends, 78 AddData).
    public var maxUploadBytesInFlightPerPrincipal: Int

    /// The most one pending operation reserves of `maxUploadBytesInFlightPerPrincipal` (an AddData
    /// of unknown length): a smaller bound would refuse such an operation always.
    public var largestUploadReservation: Int { max(appendWindowBytes, AddDataFeed.heldBytes(self)) }
    /// Content-information encodings (`openContentInformation`, `contentInformation`) one principal
    /// may have running at once; one more is 1816. Handles sharing an encoded copy encode nothing.
    /// Default 2.
    public var maxEncodingsPerPrincipal: Int
    /// Bytes one principal may hold in memory (`--max-memory-per-principal`): the encoded content
    /// information its content-information handles read (one copy per publication, version and
    /// range, however many handles share it), its retrievals' content information (the portions
    /// collected, then the layout kept) and the data kept before it, its ended reads' retained
    /// buffers and what its pending reads reserve for theirs (`maxBytes`, capped by
    /// `maxReadBytes`), and its upload reservations (`maxUploadBytesInFlightPerPrincipal`). A call
    /// that would take it past the budget is 1816 (HTTP 429 with `Retry-After`). Default 1 GiB.
    public var maxMemoryPerPrincipal: Int
    /// The least `maxMemoryPerPrincipal` that still lets one upload or one largest read through.
    public var smallestMemoryBudget: Int { max(largestUploadReservation, maxReadBytes) }
    /// An instance on which nothing was called for this long, and on which no long-poll is parked,
    /// is shut down as `shutdown` does it (`--instance-idle-timeout`); zero = never. Default 1 h.
    public var instanceIdleTimeout: Duration
    /// Operations kept per instance, pending plus retained ended ones (1816 past it). Default 10,000.
    public var maxOperationsPerInstance: Int
    /// Bytes of ended reads' buffers an instance keeps (block, stream and content-information
    /// reads). Past it the oldest buffers are released: their operations stay, with their results,
    /// but their buffer is gone (`GET …/buffer` answers 410, ERROR_CONTEXT_EXPIRED). At least
    /// `maxReadBytes`. Default 64 MiB (64 reads of 1 MiB not yet fetched).
    public var maxRetainedBufferBytesPerInstance: Int
    /// Completion ports per instance, `default` included (1816 past it). Default 64.
    public var maxPortsPerInstance: Int
    /// Callers parked on one port at once (1816 with `Retry-After`, i.e. HTTP 429, past it;
    /// `--max-waiters`). Default 10,000.
    public var maxWaitersPerPort: Int
    /// Callers parked on one operation at once (1816 past it). Default 64.
    public var maxWaitersPerOperation: Int
    /// Status-change waiters per instance (1816 past it). Default 64.
    public var maxStatusWaitersPerInstance: Int
    /// Completions queued on one port and not yet dequeued; a call that would start an operation bound
    /// to a full port fails with 1816. Default 10,000.
    public var maxQueuedCompletionsPerPort: Int
    /// Open publication streams per instance (1816 past it). Default 256.
    public var maxStreamsPerInstance: Int
    /// Open content-information handles per instance (1816 past it). Default 256.
    public var maxContentInfoHandlesPerInstance: Int
    /// Publications made through one instance and not unpublished (1816 at `publishStream` past it).
    /// Default 10,000.
    public var maxPublicationsPerInstance: Int
    /// Largest content a stream may publish, declared or not (1816 past it: synchronously for a
    /// declared length, else the append that passes it fails with 1816). Default 64 GiB, whose V1
    /// digests take 32 MiB.
    public var maxContentLength: UInt64
    /// How long an ended operation stays readable at its resources (`--retention`), also after its
    /// stream, content-information handle or port was closed; only its instance's shutdown forgets it
    /// sooner. Default 600 s.
    public var retention: Duration
    /// Cap of every long-poll timeout (`--max-wait`). Default 55 s.
    public var maxWait: Duration
    /// `Retry-After` of 1816 answers. Default 1 s.
    public var quotaRetryAfterSeconds: Int
    /// Default `retryAfterSeconds` of an unavailable service. Default 5.
    public var defaultServiceRetryAfterSeconds: Int
    /// Largest `RetrieveContentInformation` read; larger requests are shortened (a partial read, as
    /// Windows does with a short buffer). Default 1 MiB.
    public var maxReadBytes: Int
    /// Body bytes buffered per append before `AppendSink.write` suspends (backpressure). Default 1 MiB.
    public var appendWindowBytes: Int
    /// Hashing workers (serial queues) shared by all streams. Default 2.
    public var hashingWorkers: Int
    /// Largest accepted fault delay (`/admin/faults`, 87 past it). Default 10 minutes.
    public var maxFaultDelay: Duration
    /// Open retrievals per instance (1816 past it). Default 256.
    public var maxRetrievalsPerInstance: Int
    /// Content information bytes one retrieval may collect (AddContentInformation past it: 87,
    /// HTTP 413, nothing added). Default 16 MiB: V1 content information of some 32 GiB of content.
    public var maxRetrievalContentInfoBytes: Int
    /// AddData bytes one retrieval keeps while its content information is not complete yet, to
    /// store them once it is (an AddData past it: 1816). Default 16 MiB.
    public var maxRetrievalPendingDataBytes: Int
    /// A block or stream read's timeout when the caller gives none (PEERDIST_READ_TIMEOUT_DEFAULT).
    /// Default 5 s.
    public var defaultReadTimeout: Duration
    /// Longest accepted read timeout (87 past it). Default 10 minutes.
    public var maxReadTimeout: Duration

    // MARK: - Init

    /// Creates limits; every parameter has the documented default.
    public init(
        maxInstances: Int = 1_024,
        maxInstancesPerPrincipal: Int = 256,
        maxPendingOperationsPerPrincipal: Int = 10_000,
        maxParkedWaitersPerPrincipal: Int = 4_096,
        maxOpenHandlesPerPrincipal: Int = 4_096,
        maxUploadBytesInFlightPerPrincipal: Int = 256 << 20,
        maxMemoryPerPrincipal: Int = 1 << 30,
        maxEncodingsPerPrincipal: Int = 2,
        instanceIdleTimeout: Duration = .seconds(3_600),
        maxOperationsPerInstance: Int = 10_000,
        maxRetainedBufferBytesPerInstance: Int = 64 << 20,
        maxPortsPerInstance: Int = 64,
        maxWaitersPerPort: Int = 10_000,
        maxWaitersPerOperation: Int = 64,
        maxStatusWaitersPerInstance: Int = 64,
        maxQueuedCompletionsPerPort: Int = 10_000,
        maxStreamsPerInstance: Int = 256,
        maxContentInfoHandlesPerInstance: Int = 256,
        maxPublicationsPerInstance: Int = 10_000,
        maxContentLength: UInt64 = 64 << 30,
        retention: Duration = .seconds(600),
        maxWait: Duration = .seconds(55),
        quotaRetryAfterSeconds: Int = 1,
        defaultServiceRetryAfterSeconds: Int = 5,
        maxReadBytes: Int = 1 << 20,
        appendWindowBytes: Int = 1 << 20,
        hashingWorkers: Int = 2,
        maxFaultDelay: Duration = .seconds(600),
        maxRetrievalsPerInstance: Int = 256,
        maxRetrievalContentInfoBytes: Int = 16 << 20,
        maxRetrievalPendingDataBytes: Int = 16 << 20,
        defaultReadTimeout: Duration = .seconds(5),
        maxReadTimeout: Duration = .seconds(600)
    ) {
        self.maxInstances = maxInstances
        self.maxInstancesPerPrincipal = maxInstancesPerPrincipal
        self.maxPendingOperationsPerPrincipal = maxPendingOperationsPerPrincipal
        self.maxParkedWaitersPerPrincipal = maxParkedWaitersPerPrincipal
        self.maxOpenHandlesPerPrincipal = maxOpenHandlesPerPrincipal
        self.maxUploadBytesInFlightPerPrincipal = maxUploadBytesInFlightPerPrincipal
        self.maxMemoryPerPrincipal = maxMemoryPerPrincipal
        self.maxEncodingsPerPrincipal = maxEncodingsPerPrincipal
        self.instanceIdleTimeout = instanceIdleTimeout
        self.maxOperationsPerInstance = maxOperationsPerInstance
        self.maxRetainedBufferBytesPerInstance = max(maxRetainedBufferBytesPerInstance, maxReadBytes)
        self.maxPortsPerInstance = maxPortsPerInstance
        self.maxWaitersPerPort = maxWaitersPerPort
        self.maxWaitersPerOperation = maxWaitersPerOperation
        self.maxStatusWaitersPerInstance = maxStatusWaitersPerInstance
        self.maxQueuedCompletionsPerPort = maxQueuedCompletionsPerPort
        self.maxStreamsPerInstance = maxStreamsPerInstance
        self.maxContentInfoHandlesPerInstance = maxContentInfoHandlesPerInstance
        self.maxPublicationsPerInstance = maxPublicationsPerInstance
        self.maxContentLength = maxContentLength
        self.retention = retention
        self.maxWait = maxWait
        self.quotaRetryAfterSeconds = quotaRetryAfterSeconds
        self.defaultServiceRetryAfterSeconds = defaultServiceRetryAfterSeconds
        self.maxReadBytes = maxReadBytes
        self.appendWindowBytes = appendWindowBytes
        self.hashingWorkers = hashingWorkers
        self.maxFaultDelay = maxFaultDelay
        self.maxRetrievalsPerInstance = maxRetrievalsPerInstance
        self.maxRetrievalContentInfoBytes = maxRetrievalContentInfoBytes
        self.maxRetrievalPendingDataBytes = maxRetrievalPendingDataBytes
        self.defaultReadTimeout = defaultReadTimeout
        self.maxReadTimeout = maxReadTimeout
    }
}
