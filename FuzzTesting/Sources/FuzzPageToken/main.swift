import PeerDistFuzzing

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    PageTokenFuzzer.run(UnsafeRawBufferPointer(start: start, count: count))
    return 0
}
