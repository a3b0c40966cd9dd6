import Foundation
import PeerDistFuzzing
import Testing

/// Replays every input kept under FuzzTesting/ through the fuzz targets' own entry points: the
/// crashes found (Regressions/NAME/) and the seed corpus (Corpus/NAME/). An input that breaks an
/// invariant traps, which fails the run; an empty folder fails the test, so it cannot pass vacuously.
@Suite struct FuzzRegressionTests {
    static let fuzzTesting = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("FuzzTesting")

    static let targetNames = FuzzTargets.all.map(\.name)

    static func files(_ folder: String, _ target: String) throws -> [URL] {
        let dir = fuzzTesting.appendingPathComponent(folder).appendingPathComponent(target)
        return try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: [.isRegularFileKey])
            .filter { !$0.lastPathComponent.hasPrefix(".") }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    static func replay(_ folder: String, _ target: String) throws -> Int {
        let run = try #require(FuzzTargets.all.first { $0.name == target }?.run)
        let inputs = try files(folder, target)
        for url in inputs {
            let data = try Data(contentsOf: url)
            data.withUnsafeBytes { run($0) }
        }
        return inputs.count
    }

    @Test(arguments: targetNames)
    func regressions(_ target: String) throws {
        #expect(try Self.replay("Regressions", target) > 0, "FuzzTesting/Regressions/\(target) holds no input")
    }

    @Test(arguments: targetNames)
    func corpus(_ target: String) throws {
        #expect(try Self.replay("Corpus", target) > 0, "FuzzTesting/Corpus/\(target) holds no input")
    }

    /// Every target built by FuzzTesting/ has an entry point here, and the reverse.
    @Test func everyExecutableHasAnEntryPoint() throws {
        let sources = try FileManager.default.contentsOfDirectory(atPath: Self.fuzzTesting.appendingPathComponent("Sources").path)
            .filter { !$0.hasPrefix(".") }
        #expect(Set(sources) == Set(Self.targetNames))
    }
}
