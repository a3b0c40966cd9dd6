// swift-tools-version:6.1
import PackageDescription

// Layering (enforced by this graph, see docs/ARCHITECTURE.md):
//   CSystemShims → Transport ─┐
//   CZlib → HTTPWire ─────────┴→ HTTPServer ─┐
//   PCCRC → PeerDistEngine ──────────────────┴→ PeerDistAPI → peerdistd
// PeerDistEngine knows no HTTP; HTTPServer knows no PeerDist.
// CNGHTTP2 + HTTPWire → HTTP2Wire: the sans-I/O HTTP/2 session, for HTTPServer to drive.
// PeerDistClient (generated from openapi.yaml + a thin layer; swift-openapi-runtime, URLSession)
// knows nothing of the server; PeerDistTesting = PeerDistClient + the service assembly, in-process.
// CSQLite + PCCRC → BlockCache: the verified block cache, which PeerDistEngine's retrieval stores into
// (PeerDistAPI reads its statistics for /metrics).

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "PeerDist",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "peerdistd", targets: ["peerdistd"]),
        // The fuzz targets' bodies, for FuzzTesting/ (libFuzzer) and FuzzRegressionTests.
        .library(name: "PeerDistFuzzing", targets: ["PeerDistFuzzing"]),
        // A typed Swift client of openapi.yaml (generated, committed) over URLSession; no SwiftNIO.
        .library(name: "PeerDistClient", targets: ["PeerDistClient"]),
        // A live peerdistd service inside a test process, with a ready PeerDistClient.
        .library(name: "PeerDistTesting", targets: ["PeerDistTesting"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.1.0"),
        // PeerDistClient only (the generator itself lives in Tools/openapi-generator).
        .package(url: "https://github.com/apple/swift-openapi-runtime", from: "1.13.0"),
        .package(url: "https://github.com/apple/swift-openapi-urlsession", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.7.0"),
    ],
    targets: [
        // C shim for GNU-only calls (accept4, epoll) that Glibc does not import.
        .target(name: "CSystemShims"),
        // zlib (gzip responses), from the system (zlib1g-dev, a Swift toolchain dependency).
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        // Sans-I/O HTTP/1.1: bytes in, events out. No sockets, no Dispatch.
        .target(name: "HTTPWire", dependencies: ["CZlib"], swiftSettings: swiftSettings),
        // libnghttp2 from the system (Debian libnghttp2-dev), with a shim for what Swift imports awkwardly.
        .systemLibrary(name: "CNGHTTP2", pkgConfig: "libnghttp2", providers: [.apt(["libnghttp2-dev"])]),
        // Sans-I/O HTTP/2 server session over nghttp2: bytes in, events and bytes out. No sockets, no Dispatch.
        .target(name: "HTTP2Wire", dependencies: ["CNGHTTP2", "HTTPWire", "Base64URL"], swiftSettings: swiftSettings),
        // Base64url without padding: the one codec (identifiers, handles, page tokens, HTTP2-Settings).
        .target(name: "Base64URL", swiftSettings: swiftSettings),
        // Non-blocking POSIX sockets driven by Dispatch sources on a few serial queues.
        .target(name: "Transport", dependencies: ["CSystemShims"], swiftSettings: swiftSettings),
        // Connections, keep-alive, limits, timeouts, routing, problem+json.
        .target(
            name: "HTTPServer",
            dependencies: [
                "HTTPWire", "HTTP2Wire", "Transport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // MS-PCCRC content information: hashing, serialisation, parsing.
        .target(
            name: "PCCRC",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // SQLite from the system (Debian libsqlite3-dev), for the block cache's index.
        .systemLibrary(name: "CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        // The persistent, verified, bounded block cache (SQLite index beside content-addressed
        // block files). Knows no HTTP and no engine operations.
        .target(
            name: "BlockCache",
            dependencies: ["CSQLite", "CSystemShims", "PCCRC", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // Inserts into a block cache until killed: BlockCacheTests kill -9 it mid-insert.
        .executableTarget(
            name: "BlockCacheCrashChild",
            dependencies: ["BlockCache", "PCCRC", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // Throughput and memory of the block cache, for Benchmarks/cache_bench.sh.
        .executableTarget(
            name: "BlockCacheBench",
            dependencies: ["BlockCache", "PCCRC", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // PeerDist domain: instances, operations, completion ports, publishing. Knows no HTTP.
        .target(
            name: "PeerDistEngine",
            dependencies: [
                "PCCRC", "Base64URL", "BlockCache",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // The REST surface: routes, DTOs, error mapping.
        .target(
            name: "PeerDistAPI",
            dependencies: [
                "HTTPServer", "PeerDistEngine", "PCCRC", "Base64URL", "BlockCache",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "peerdistd",
            dependencies: [
                "PeerDistAPI", "HTTPServer", "PeerDistEngine", "CSystemShims",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Generated/ is swift-openapi-generator's output for openapi.yaml (scripts/generate-client.sh;
        // CI checks it is current); the rest is the hand-written layer harnesses use.
        .target(
            name: "PeerDistClient",
            dependencies: [
                "Base64URL",
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "OpenAPIURLSession", package: "swift-openapi-urlsession"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: swiftSettings
        ),
        // The daemon's service assembly on port 0 with a temporary data directory, in-process.
        .target(
            name: "PeerDistTesting",
            dependencies: ["PeerDistClient", "PeerDistAPI", "PeerDistEngine", "HTTPServer", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // Test harness: server on port 0, raw HTTP/1.1 and HTTP/2 clients, manual clock, drip-feed verifier.
        .target(
            name: "ServerTesting",
            dependencies: ["HTTPServer", "HTTPWire", "CNGHTTP2", "CZlib", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // What each libFuzzer target of FuzzTesting/ runs: never traps on any bytes, traps when an
        // invariant breaks. FuzzRegressionTests replays the corpus and the found crashes through it.
        .target(
            name: "PeerDistFuzzing",
            dependencies: [
                "HTTPWire", "HTTP2Wire", "HTTPServer", "PCCRC", "PeerDistEngine", "PeerDistAPI",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "FuzzRegressionTests", dependencies: ["PeerDistFuzzing"], swiftSettings: swiftSettings),
        .testTarget(name: "HTTPWireTests", dependencies: ["HTTPWire", "ServerTesting"], swiftSettings: swiftSettings),
        .testTarget(name: "HTTP2WireTests", dependencies: ["HTTP2Wire", "HTTPWire", "CNGHTTP2"], swiftSettings: swiftSettings),
        .testTarget(name: "HTTPServerTests", dependencies: ["HTTPServer", "HTTPWire", "ServerTesting"], swiftSettings: swiftSettings),
        .testTarget(
            name: "BlockCacheTests", dependencies: ["BlockCache", "BlockCacheCrashChild", "CSQLite", "PCCRC", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings),
        .testTarget(name: "PCCRCTests", dependencies: ["PCCRC"], resources: [.copy("Vectors")], swiftSettings: swiftSettings),
        .testTarget(name: "PeerDistEngineTests", dependencies: ["PeerDistEngine", "PCCRC", "Base64URL"], swiftSettings: swiftSettings),
        .testTarget(
            name: "PeerDistAPITests",
            dependencies: [
                "PeerDistAPI", "PeerDistEngine", "PCCRC", "HTTPServer", "HTTPWire", "ServerTesting", "BlockCache",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Every operation family through the generated client, against PeerDistTesting's server.
        .testTarget(name: "PeerDistClientTests", dependencies: ["PeerDistClient", "PeerDistTesting"], swiftSettings: swiftSettings),
        // Runs the built peerdistd binary: configuration errors, restarts, signals.
        .testTarget(name: "PeerDistDaemonTests", dependencies: ["peerdistd", "ServerTesting"], swiftSettings: swiftSettings),
    ]
)
