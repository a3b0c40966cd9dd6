import Foundation
import PeerDistFuzzing
import Testing

/// Replays every input kept under FuzzTesting/ through the fuzz targets' own entry points: the
/// crashes found (Regressions/NAME/) and the seed corpus (Corpus/NAME/). An input that breaks an
/// invariant traps, which fails the run; an empty folder fails the test, so it cannot pass vacuously.
///
/// The entry points block their thread while a handler's task runs (as libFuzzer's main thread
/// does), so they run on a thread of their own, never on one of the cooperative pool's.
@Suite(.serialized) struct FuzzRegressionTests {
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

    static func replay(_ folder: String, _ target: String) async throws -> Int {
        let run = try #require(FuzzTargets.all.first { $0.name == target }?.run)
        let inputs = try files(folder, target).map { try Data(contentsOf: $0) }
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let thread = Thread {
                for data in inputs { data.withUnsafeBytes { run($0) } }
                done.resume()
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        return inputs.count
    }

    @Test(arguments: targetNames)
    func regressions(_ target: String) async throws {
        #expect(try await Self.replay("Regressions", target) > 0, "FuzzTesting/Regressions/\(target) holds no input")
    }

    @Test(arguments: targetNames)
    func corpus(_ target: String) async throws {
        #expect(try await Self.replay("Corpus", target) > 0, "FuzzTesting/Corpus/\(target) holds no input")
    }

    /// Every target built by FuzzTesting/ has an entry point here, and the reverse.
    @Test func everyExecutableHasAnEntryPoint() throws {
        let sources = try FileManager.default.contentsOfDirectory(atPath: Self.fuzzTesting.appendingPathComponent("Sources").path)
            .filter { !$0.hasPrefix(".") }
        #expect(Set(sources) == Set(Self.targetNames))
    }
}
