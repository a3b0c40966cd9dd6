// swift-tools-version:6.1
import PackageDescription

// Build-time tooling only, kept out of the main package's graph: the main package (and every user
// of peerdistd or PeerDistClient) never builds the generator. scripts/generate-client.sh builds
// swift-openapi-generator from here and regenerates Sources/PeerDistClient/Generated/ from
// openapi.yaml; CI checks that this changes nothing.
let package = Package(
    name: "PeerDistOpenAPITools",
    dependencies: [
        .package(url: "https://github.com/apple/swift-openapi-generator", exact: "1.14.3"),
    ],
    targets: []
)
