// swift-tools-version:6.1
import PackageDescription

// libFuzzer targets, one executable each, in a package of their own beside the main one (as
// swift-protobuf's FuzzTesting/ does). Each main.swift holds only the entry point; the bodies are
// in the main package's PeerDistFuzzing library, which FuzzRegressionTests also runs. Build and
// run them with scripts/fuzz.sh.

let targets = [
    "FuzzRequestHead", "FuzzChunked", "FuzzRouter", "FuzzRouteParameters", "FuzzPCCRC", "FuzzGzip",
    "FuzzHTTP1Connection", "FuzzHTTP2Frames", "FuzzTokenTable", "FuzzPageToken",
]

let package = Package(
    name: "FuzzTesting",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "PeerDist", path: "..")],
    targets: targets.map { name in
        .executableTarget(
            name: name,
            dependencies: [.product(name: "PeerDistFuzzing", package: "PeerDist")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        )
    }
)
