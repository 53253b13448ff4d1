@testable import Batch
import Foundation
import Testing
import TestSupport

@Suite struct ManifestTests {
    private func record(_ item: Int, _ status: ManifestRecord.Status = .ok, key: String? = nil,
                        seconds: Double = 1, params: [String: String] = [:]) -> ManifestRecord {
        ManifestRecord(item: item, items: 12, shard: "0/1", params: params.isEmpty ? ["seed": String(item)] : params,
                       key: key ?? "key\(item)", graph: "g.yaml", graphSHA256: "abc", status: status,
                       exitCode: status == .failed ? 3 : 0, error: status == .failed ? "node 'x' failed\nmore" : nil,
                       seconds: seconds,
                       outputs: [.init(node: "save", path: "out/\(item).png", sha256: "00", bytes: 1)],
                       nodeTypes: ["dit.load": .init(runs: 1, seconds: 0.5), "sample": .init(runs: 1, cached: 2, seconds: seconds)],
                       cacheHits: ["memory": 2], modelLoads: 1, modelLoadSeconds: 0.5, peakRSSBytes: 100 << 20)
    }

    @Test func recordsRoundTripAsOneLineEach() throws {
        let dir = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("sub/m.jsonl").path
        let writer = try ManifestWriter(path: path)
        var r = record(0)
        r.params = ["prompt": "line one\nline \"two\"/x"]
        try writer.append(r)
        try writer.append(record(1, .failed))
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.split(separator: "\n").count == 2 && text.hasSuffix("\n"))
        #expect(text.hasPrefix("{\"attempts\":1,\"cache_hits\":{\"memory\":2},"))
        let contents = try ManifestReader.read([path])
        #expect(contents.warnings.isEmpty && contents.lines == 2)
        #expect(contents.records == [r, record(1, .failed)])
    }

    @Test func aTornLastLineIsSkippedWithAWarningAndTheNextAppendStartsANewLine() throws {
        let dir = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("m.jsonl").path
        try ManifestWriter(path: path).append(record(0))
        // A writer killed mid-line leaves a prefix of a record without its newline.
        let torn = String(record(1).jsonLine.prefix(40))
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(torn.utf8))
        try handle.close()
        var contents = try ManifestReader.read([path])
        #expect(contents.records.map(\.item) == [0])
        #expect(contents.warnings.count == 1 && contents.warnings[0].contains("m.jsonl:2: skipped a torn last line"))

        try ManifestWriter(path: path).append(record(2))
        contents = try ManifestReader.read([path])
        #expect(contents.records.map(\.item) == [0, 2])
        #expect(contents.warnings.count == 1 && contents.warnings[0].contains("m.jsonl:2: skipped a line that is not"))
    }

    @Test func concurrentAppendersNeverInterleaveLines() async throws {
        let dir = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("m.jsonl").path
        // Each task opens its own descriptor, as separate processes on one host do.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<4 {
                group.addTask {
                    let writer = try ManifestWriter(path: path)
                    for i in 0..<50 {
                        var r = self.record(w * 100 + i)
                        r.params = ["pad": String(repeating: "x", count: 3000)]  // lines larger than a page
                        try writer.append(r)
                    }
                }
            }
            try await group.waitForAll()
        }
        let contents = try ManifestReader.read([path])
        #expect(contents.warnings.isEmpty)
        #expect(Set(contents.records.map(\.item)).count == 200)
    }

    @Test func missingFilesAreAnErrorForReadButNotForResume() {
        #expect(throws: ManifestReadError.self) { try ManifestReader.read(["/nonexistent/m.jsonl"]) }
        #expect(ManifestReader.readExisting(["/nonexistent/m.jsonl"]).records.isEmpty)
    }

    @Test func summaryCountsEachItemByItsLatestLine() {
        let records = [record(0, seconds: 3), record(1, .failed), record(2, seconds: 1), record(1, seconds: 2),
                       record(3, .failed), record(2, .skipped)]
        let summary = ManifestSummary(records: records)
        #expect(summary.latest.map(\.item) == [0, 1, 2, 3])
        #expect(summary.items(.ok).map(\.item) == [0, 1])
        #expect(summary.items(.failed).map(\.item) == [3])
        #expect(summary.items(.skipped).map(\.item) == [2])
        let e = summary.estimate()
        #expect(e?.samples == 3 && e?.medianSeconds == 2 && e?.maxSeconds == 3 && e?.totalSeconds == 6)
        #expect(e?.peakRSSBytes == 100 << 20 && e?.modelLoads == 3)
        #expect(summary.estimate(graphSHA256: "other") == nil)
        let text = summary.render(files: ["m.jsonl"], lines: 6, warnings: 1)
        #expect(text.contains("items: 4 (2 ok, 1 failed, 1 skipped)"), "\(text)")
        #expect(text.contains("item 3 (seed=3), exit 3: node 'x' failed\n"))
        #expect(text.contains("sample"))
        // Node types: the failed and ok records count (5 of 6 ran).
        #expect(summary.nodeTypes.first { $0.type == "dit.load" }?.stats.runs == 5)
    }

    @Test func metricsAreValidPrometheusText() throws {
        var metrics = BatchMetrics(graph: "g \"x\".yaml", shard: Shard(index: 1, count: 4), total: 5)
        metrics.add(record(0))
        metrics.add(record(1, .failed))
        let text = metrics.render(now: Date(timeIntervalSince1970: 1000))
        #expect(text.contains("sanagraph_batch_items{graph=\"g \\\"x\\\".yaml\",shard=\"1/4\",state=\"ok\"} 1\n"))
        #expect(text.contains("state=\"failed\"} 1\n") && text.contains("state=\"pending\"} 3\n"))
        #expect(text.contains("sanagraph_batch_node_seconds_total{graph=\"g \\\"x\\\".yaml\",shard=\"1/4\",type=\"dit.load\"} 1.000000\n"))
        #expect(text.contains("sanagraph_batch_last_update_timestamp_seconds{graph=\"g \\\"x\\\".yaml\",shard=\"1/4\"} 1000.000000\n"))
        // Every sample line is NAME{LABELS} VALUE, and every metric has HELP and TYPE.
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            #expect(line.range(of: #"^[a-z_]+\{[^}]*\} -?[0-9.]+$"#, options: .regularExpression) != nil, "\(line)")
        }
        #expect(text.components(separatedBy: "# TYPE").count == text.components(separatedBy: "# HELP").count)
        let dir = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("batch.prom").path
        try metrics.write(to: path)
        #expect(try String(contentsOfFile: path, encoding: .utf8).hasPrefix("# HELP sanagraph_batch_items"))
    }
}

@Suite struct ProvenanceTests {
    let base = OutputProvenance(graphSource: "g", params: ["seed": .int(1)], nodeVersions: ["dit.load": 1],
                                fingerprints: ["dit": "/m/a.safetensors|size=10|mtime=5.000000000|inode=64769:12"],
                                node: "save")

    @Test func sameRunMatchesAcrossHostsWithOtherDeviceNumbers() {
        var other = base
        other.fingerprints["dit"] = "/m/a.safetensors|size=10|mtime=5.000000000|inode=41:99"
        #expect(base.mismatch(other) == nil)
    }

    @Test func differencesAreNamed() {
        var p = base
        p.params["seed"] = .int(2)
        #expect(base.mismatch(p)?.contains("seed 2 (now 1)") == true)
        p = base
        p.fingerprints["dit"] = "/m/a.safetensors|size=11|mtime=5.000000000|inode=64769:12"
        #expect(base.mismatch(p)?.contains("files read by dit changed") == true)
        p = base
        p.nodeVersions["dit.load"] = 2
        #expect(base.mismatch(p)?.contains("dit.load") == true)
        p = base
        p.graphSource = "h"
        #expect(base.mismatch(p)?.contains("different graph") == true)
        p = base
        p.node = "save2"
        #expect(base.mismatch(p)?.contains("node 'save2'") == true)
    }
}
