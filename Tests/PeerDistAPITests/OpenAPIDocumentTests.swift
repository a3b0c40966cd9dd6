import Foundation
import ServerTesting
import Testing

@Suite struct OpenAPIDocumentTests {
    /// The repository's openapi.yaml, found from this file's location.
    static func repositoryDocument() throws -> [UInt8] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return Array(try Data(contentsOf: root.appendingPathComponent("openapi.yaml")))
    }

    /// GET /openapi.yaml serves the repository's file byte for byte (final newline included), so
    /// a stale embedding (scripts/embed-openapi.sh not run) fails here too.
    @Test func servesTheRepositoryFileByteForByte() async throws {
        let f = try await APIFixture.start()
        let r = try await f.client.request("GET", "/openapi.yaml")
        #expect(r.status == 200)
        #expect(r.headers.first { $0.0.lowercased() == "content-type" }?.1 == "application/yaml")
        let expected = try Self.repositoryDocument()
        #expect(r.body.count == expected.count)
        #expect(r.body == expected)
        await f.stop()
    }
}
