/// Every fuzz target by the name of its executable in FuzzTesting/ and of its folders there
/// (Dictionaries/NAME.dict, Corpus/NAME/, Regressions/NAME/).
public enum FuzzTargets {
    public static let all: [(name: String, run: @Sendable (UnsafeRawBufferPointer) -> Void)] = [
        ("FuzzRequestHead", RequestHeadFuzzer.run),
        ("FuzzChunked", ChunkedFuzzer.run),
        ("FuzzRouter", RouterFuzzer.run),
        ("FuzzRouteParameters", RouteParametersFuzzer.run),
        ("FuzzPCCRC", PCCRCFuzzer.run),
        ("FuzzGzip", GzipFuzzer.run),
        ("FuzzHTTP1Connection", HTTP1ConnectionFuzzer.run),
        ("FuzzHTTP2Frames", HTTP2FrameFuzzer.run),
        ("FuzzTokenTable", TokenTableFuzzer.run),
        ("FuzzPageToken", PageTokenFuzzer.run),
    ]
}
