import Foundation
import ServerTesting
import Testing

/// HTTP/2 against the built daemon, where the server's resident memory can be read on its own
/// (the API tests run the server inside the test process, next to other suites).
@Suite(.serialized) struct HTTP2DaemonTests {
    /// VmRSS of a process, in KiB.
    static func residentKiB(_ pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    /// Decompression bombs (about 1 MiB of gzip inflating to 1 GiB) are 413 on a JSON route and
    /// on a content upload, and a CONTINUATION flood (32 MiB) is cut off with GOAWAY; the daemon's
    /// resident memory grows by less than 16 MiB over all of them.
    @Test func bombsAndFloodsKeepTheDaemonsMemoryBounded() async throws {
        let d = try DaemonTests.Daemon(["--port", "0", "--data-dir", DaemonTests.tempDir(), "--log-level", "error"])
        defer {
            d.process.terminate()
            d.process.waitUntilExit()
        }
        #expect(await d.firstLine().hasPrefix("listening on"))
        let pid = d.process.processIdentifier
        let h1 = try await RawHTTPClient.connect(port: d.port)
        let h = try #require(try await h1.request("POST", "/instances", json: #"{"version":2}"#).json["handle"] as? String)
        let id = "Ym9tYg"
        let s = try #require(try await h1.request("POST", "/instances/\(h)/content/\(id)/streams", json: #"{"version":1}"#).json["stream"] as? String)
        let bomb = gzipOfZeros(count: 1 << 30)
        #expect(bomb.count > 900_000 && bomb.count < 1_200_000, "\(bomb.count)")

        // Warm up every path the bombs take (HTTP/2, gzip requests and answers, uploads).
        let warm = try await H2Client.connect(port: d.port)
        #expect(try await warm.request("GET", "/openapi.yaml", headers: [("accept-encoding", "gzip")]).status == 200)
        let small = gzipOfZeros(count: 100_000)
        #expect(try await warm.request("POST", "/instances/\(h)/content/\(id)/streams/\(s)/data", body: small,
                                       headers: [("content-type", "application/octet-stream"), ("content-encoding", "gzip"), ("prefer", "wait=5")]).status == 200)
        warm.close()
        let before = Self.residentKiB(pid)
        #expect(before > 0)

        for _ in 0..<3 {
            let h2 = try await H2Client.connect(port: d.port)
            let json = try await h2.request("POST", "/instances", body: bomb,
                                            headers: [("content-type", "application/json"), ("content-encoding", "gzip")], timeout: .seconds(30))
            #expect(json.status == 413, "\(json.text)")
            let upload = try await h2.request("POST", "/instances/\(h)/content/\(id)/streams/\(s)/data", body: bomb,
                                              headers: [("content-type", "application/octet-stream"), ("content-encoding", "gzip")], timeout: .seconds(30))
            #expect(upload.status == 413, "\(upload.text)")
            h2.close()
        }
        let afterBombs = Self.residentKiB(pid)

        let flooder = try await H2Client.connect(port: d.port)
        var flood = H2Frame.frame(type: 1, flags: 0x1, stream: 1, payload: H2Frame.requestBlock(path: "/healthz"))
        let continuation = H2Frame.frame(type: 9, flags: 0, stream: 1,
                                         payload: Array([[UInt8]](repeating: H2Frame.literal("x-flood", String(repeating: "a", count: 100)), count: 140).joined()))
        for _ in 0..<((32 << 20) / continuation.count) { flood += continuation }
        flooder.sendRaw(flood)
        #expect(try await flooder.waitForGoAway(timeout: .seconds(10)).code == 11)
        #expect(await flooder.waitForClose(timeout: .seconds(10)))
        #expect(try await h1.request("GET", "/healthz").status == 200)
        let after = Self.residentKiB(pid)
        print("HTTP2DaemonTests: VmRSS before \(before) KiB, after the bombs \(afterBombs) KiB, after the flood \(after) KiB")
        #expect(after - before < 16 * 1024, "RSS grew from \(before) KiB to \(after) KiB")
    }
}
