import Crypto
import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Sweeps, manifests, resume and shards through the built binary, with the shipped model at 64 px and 2 steps.
@Suite struct BatchCLITests {
    static let graph = PipelineSupport.graph("text2img")
    static let model = TestSupport.repositoryRoot.appendingPathComponent("models/sana-shapes").path

    /// `run text2img.yaml` with the small settings, the 3 x 4 sweep, `extra` options; in `dir`.
    static func args(_ extra: [String], output: String = "out/{seed}_{params.guidance}.png",
                     sweep: [String] = ["--sweep", "seed=0..2", "--sweep", "guidance=1.5,3,4.5,6"]) -> [String] {
        ["run", graph, "--set", "models=\(model)", "--set", "steps=2", "--set", "width=64", "--set", "height=64",
         "--set", "output=\(output)"] + sweep + extra
    }

    static func records(_ path: String) throws -> [[String: Any]] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
        }
    }

    static func pngs(in dir: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [])
            .filter { $0.hasSuffix(".png") && !$0.hasPrefix(".") }.sorted()
    }

    static func sha256(_ path: String) -> String {
        SHA256.hash(data: FileManager.default.contents(atPath: path) ?? Data()).map { String(format: "%02x", $0) }.joined()
    }

    /// Starts the binary without waiting (stdout and stderr to files in `dir`).
    static func start(_ arguments: [String], in dir: URL, name: String, environment: [String: String] = [:]) throws -> Process {
        let process = Process()
        process.executableURL = try CLI.executable()
        process.arguments = arguments
        var env = CLI.environment(cacheIn: dir)
        env.merge(environment) { $1 }
        process.environment = env
        process.currentDirectoryURL = dir
        process.standardInput = FileHandle.nullDevice
        for (suffix, keyPath) in [("out", \Process.standardOutput), ("err", \Process.standardError)] as [(String, ReferenceWritableKeyPath<Process, Any?>)] {
            let url = dir.appendingPathComponent("\(name).\(suffix)")
            _ = FileManager.default.createFile(atPath: url.path, contents: nil)
            process[keyPath: keyPath] = try FileHandle(forWritingTo: url)
        }
        try process.run()
        return process
    }

    @Test func aThreeByFourSweepWritesTwelveFilesAndTwelveManifestLines() throws {
        let dir = TestSupport.temporaryDirectory("sanagraph-sweep")
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try CLI.run(Self.args(["--manifest", "out/manifest.jsonl"]), directory: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let files = Self.pngs(in: dir.appendingPathComponent("out"))
        #expect(files.count == 12)
        #expect(Set(files.map { Self.sha256(dir.appendingPathComponent("out/\($0)").path) }).count == 12)
        let records = try Self.records(dir.appendingPathComponent("out/manifest.jsonl").path)
        #expect(records.count == 12)
        #expect(records.map { $0["item"] as? Int } == Array(0..<12))
        #expect(records.allSatisfy { $0["status"] as? String == "ok" && $0["items"] as? Int == 12 })
        for record in records {
            let output = try #require((record["outputs"] as? [[String: Any]])?.first)
            let path = dir.appendingPathComponent(try #require(output["path"] as? String)).path
            #expect(Self.sha256(path) == output["sha256"] as? String)
        }
        // One process: the three models load once, and an item that only changes the guidance takes the prompt
        // encodings from memory and skips the text encoder.
        #expect(records.reduce(0) { $0 + ($1["model_loads"] as? Int ?? 0) } == 3)
        let second = try #require(records[1]["node_types"] as? [String: [String: Any]])
        #expect(second["text.encode"]?["cached"] as? Int == 2 && second["text_encoder.load"]?["skipped"] as? Int == 1)
        #expect(records[1]["params"] as? [String: String] == ["seed": "0", "guidance": "3"])
        #expect(r.stderr.contains("batch: 12 items") && r.stderr.contains("12 ok"))
    }

    @Test func aKilledBatchResumesWithOnlyTheMissingItems() throws {
        let dir = TestSupport.temporaryDirectory("sanagraph-resume")
        defer { try? FileManager.default.removeItem(at: dir) }
        let manifest = dir.appendingPathComponent("out/manifest.jsonl").path
        let args = Self.args(["--manifest", "out/manifest.jsonl"])
        let process = try Self.start(args, in: dir, name: "first")
        // Kill it once a few items are recorded (SIGKILL: no chance to clean up).
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            let lines = (try? String(contentsOfFile: manifest, encoding: .utf8))?.split(separator: "\n").count ?? 0
            if lines >= 3 || !process.isRunning { break }
            usleep(10_000)
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let before = Set(Self.pngs(in: dir.appendingPathComponent("out")))
        try #require(before.count < 12, "the first run finished before it could be killed")
        let firstLines = try CLI.run(["manifest", "summarize", manifest]).stdout

        let r = try CLI.run(args, directory: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(Self.pngs(in: dir.appendingPathComponent("out")).count == 12)
        let summary = try CLI.run(["manifest", "summarize", manifest])
        #expect(summary.status == 0, "\(summary.stdout)\(summary.stderr)")
        #expect(summary.stdout.contains("items: 12 ("), "\(summary.stdout)")
        // The re-run ran exactly the items without a file; a file written just before the kill, but not yet in
        // the manifest, is recognised by its provenance and only recorded.
        let records = try Self.records(manifest)
        let firstRun = records.filter { $0["pid"] as? Int == Int(process.processIdentifier) }
        let rerun = records.filter { $0["pid"] as? Int != Int(process.processIdentifier) }
        let names = { (rs: [[String: Any]]) in
            Set(rs.compactMap { ($0["outputs"] as? [[String: Any]])?.first?["path"] as? String }
                .map { ($0 as NSString).lastPathComponent })
        }
        let ran = rerun.filter { $0["status"] as? String == "ok" }
        #expect(names(ran).isDisjoint(with: before), "re-ran items whose file existed (\(firstLines))")
        #expect(names(ran).union(before).count == 12)
        let item = { (record: [String: Any]) -> Int in record["item"] as? Int ?? -1 }
        let skipped = Set(rerun.filter { $0["status"] as? String == "skipped" }.map(item))
        let recordedFirst = Set(firstRun.map(item)), ranAgain = Set(ran.map(item))
        #expect(skipped == Set(0..<12).subtracting(recordedFirst).subtracting(ranAgain))
    }

    @Test func anInterruptStopsTheBatchWithExit130() throws {
        let dir = TestSupport.temporaryDirectory("sanagraph-interrupt")
        defer { try? FileManager.default.removeItem(at: dir) }
        let manifest = dir.appendingPathComponent("out/manifest.jsonl").path
        let process = try Self.start(Self.args(["--manifest", "out/manifest.jsonl"]), in: dir, name: "run")
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline, process.isRunning,
              ((try? String(contentsOfFile: manifest, encoding: .utf8))?.split(separator: "\n").count ?? 0) < 2 {
            usleep(10_000)
        }
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        let stderr = try String(contentsOf: dir.appendingPathComponent("run.err"), encoding: .utf8)
        #expect(process.terminationStatus == 130, "\(stderr)")
        #expect(stderr.contains("(interrupted)"), "\(stderr)")
        let statuses = try Self.records(manifest).compactMap { $0["status"] as? String }
        #expect(statuses.count < 12 && statuses.dropLast().allSatisfy { $0 == "ok" })
        #expect(["ok", "interrupted"].contains(statuses.last ?? ""))
    }

    /// How a shard learns its index: explicitly, or from a Kubernetes Indexed Job's or a Slurm array's variables.
    @Test(arguments: ["explicit", "kubernetes", "slurm"])
    func fourShardsTogetherMakeTheWholeSweepOnce(scheduler: String) throws {
        let dir = TestSupport.temporaryDirectory("sanagraph-shards")
        defer { try? FileManager.default.removeItem(at: dir) }
        let single = dir.appendingPathComponent("single"), sharded = dir.appendingPathComponent("sharded")
        for d in [single, sharded] { try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true) }
        // Metadata records the start time; without it the files of both runs must be identical bytes.
        let reference = try CLI.run(Self.args(["--no-metadata"]), directory: single)
        #expect(reference.status == 0, "\(reference.stderr)")

        let cache = dir.appendingPathComponent("shared-cache").path
        let processes = try (0..<4).map { i -> Process in
            var env: [String: String] = [:]
            var shard = ["--shard", "auto"]
            switch scheduler {
            case "kubernetes": env = ["JOB_COMPLETION_INDEX": "\(i)", "SANAGRAPH_SHARD_COUNT": "4"]
            case "slurm": env = ["SLURM_ARRAY_TASK_ID": "\(i + 1)", "SLURM_ARRAY_TASK_MIN": "1",
                                 "SLURM_ARRAY_TASK_COUNT": "4"]
            default: shard = ["--shard", "\(i)/4"]
            }
            return try Self.start(Self.args(["--no-metadata", "--cache-dir", cache, "--manifest", "out/manifest-{shard}.jsonl"]
                                            + shard), in: sharded, name: "shard\(i)", environment: env)
        }
        for (i, p) in processes.enumerated() {
            p.waitUntilExit()
            let err = (try? String(contentsOf: sharded.appendingPathComponent("shard\(i).err"), encoding: .utf8)) ?? ""
            #expect(p.terminationStatus == 0, "shard \(i): \(err)")
        }
        var items: [Int] = []
        for i in 0..<4 {
            let records = try Self.records(sharded.appendingPathComponent("out/manifest-\(i).jsonl").path)
            #expect(records.allSatisfy { $0["shard"] as? String == "\(i)/4" && $0["status"] as? String == "ok" })
            let mine = records.compactMap { $0["item"] as? Int }
            #expect(mine.allSatisfy { $0 % 4 == i })
            items += mine
        }
        #expect(items.sorted() == Array(0..<12))
        let files = Self.pngs(in: single.appendingPathComponent("out"))
        #expect(files.count == 12 && Self.pngs(in: sharded.appendingPathComponent("out")) == files)
        for file in files {
            #expect(FileManager.default.contents(atPath: single.appendingPathComponent("out/\(file)").path)
                    == FileManager.default.contents(atPath: sharded.appendingPathComponent("out/\(file)").path), "\(file)")
        }
        let summary = try CLI.run(["manifest", "summarize"] + (0..<4).map { sharded.appendingPathComponent("out/manifest-\($0).jsonl").path })
        #expect(summary.status == 0 && summary.stdout.contains("items: 12 (12 ok)"), "\(summary.stdout)")
    }

    @Test(arguments: [
        (["--sweep", "seed"], [:], "expected NAME=VALUES"),
        (["--sweep", "seed="], [:], "--sweep seed: no values"),
        (["--sweep", "seed=3..1"], [:], "is empty"),
        (["--sweep", "sede=1,2"], [:], "the graph has no param 'sede' (did you mean 'seed'?)"),
        (["--sweep", "seed=1,x"], [:], "item 1 (seed=x): error: --sweep seed=x: param 'seed' is an int"),
        (["--shard", "5/4"], [:], "the shard index must be 0 to 3"),
        (["--shard", "auto"], ["JOB_COMPLETION_INDEX": "1"], "SANAGRAPH_SHARD_COUNT is not set"),
        (["--shard", "auto"], ["SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2"], "SLURM_ARRAY_TASK_MIN is not set"),
        (["--sweep-file", "items.jsonl"], [:], "items.jsonl:2: values must be strings, numbers or booleans"),
        (["--sweep", "guidance=3,4"], [:], "out/{seed}.png"),
    ] as [([String], [String: String], String)])
    func badBatchInputExitsTwoNamingTheProblem(extra: [String], environment: [String: String], expected: String) throws {
        let dir = TestSupport.temporaryDirectory("sanagraph-badsweep")
        defer { try? FileManager.default.removeItem(at: dir) }
        try "{\"seed\": 1}\n{\"seed\": [2]}\n".write(to: dir.appendingPathComponent("items.jsonl"), atomically: true, encoding: .utf8)
        let r = try CLI.run(Self.args(extra, output: "out/{seed}.png", sweep: []), directory: dir,
                            environment: environment.mapValues { Optional($0) })
        #expect(r.status == 2, "\(r.stderr)")
        let shown = expected == "out/{seed}.png" ? "item 0 (guidance=3), item 1 (guidance=4)" : expected
        #expect(r.stderr.contains(shown), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("out").path))
    }

    @Test func failuresRetriesHooksAndMetrics() throws {
        let dir = TestSupport.temporaryDirectory("sanagraph-ops")
        defer { try? FileManager.default.removeItem(at: dir) }
        // A folder where item 1's picture should go: image.save fails with an I/O error (exit 6) every time.
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("out/1_4.5.png"), withIntermediateDirectories: true)
        let r = try CLI.run(Self.args(["--manifest", "out/m.jsonl", "--retries", "1", "--metrics", "out/batch.prom",
                                       "--on-item-done", "cat >> hook.log; echo >> hook.log; exit 3"],
                                      sweep: ["--sweep", "seed=0..2", "--set", "guidance=4.5"]), directory: dir)
        #expect(r.status == 6, "\(r.stderr)")
        #expect(r.stderr.contains("retrying") && r.stderr.contains("--on-item-done exited 3"), "\(r.stderr)")
        #expect(r.stderr.contains("2 ok, 1 failed") && r.stderr.contains("exit 6"), "\(r.stderr)")
        let records = try Self.records(dir.appendingPathComponent("out/m.jsonl").path)
        let failed = try #require(records.first { $0["status"] as? String == "failed" })
        #expect(failed["item"] as? Int == 1 && failed["attempts"] as? Int == 2 && failed["exit_code"] as? Int == 6)
        #expect(failed["category"] as? String == "io")
        // The hook saw each item's manifest line on stdin.
        let hooked = try String(contentsOf: dir.appendingPathComponent("hook.log"), encoding: .utf8)
            .split(separator: "\n").filter { !$0.isEmpty }
        #expect(hooked.count == 3 && hooked.allSatisfy { $0.hasPrefix("{") && $0.contains("\"key\":") })
        let metrics = try String(contentsOf: dir.appendingPathComponent("out/batch.prom"), encoding: .utf8)
        #expect(metrics.contains("state=\"ok\"} 2\n") && metrics.contains("state=\"failed\"} 1\n"), "\(metrics)")
        #expect(metrics.contains("sanagraph_batch_finished{") && metrics.contains("type=\"sample.flow_dpm_solver\""))
        let summary = try CLI.run(["manifest", "summarize", dir.appendingPathComponent("out/m.jsonl").path])
        #expect(summary.status == 1 && summary.stdout.contains("item 1 (seed=1), exit 6"), "\(summary.stdout)")
    }

    @Test func jsonPlanAndSummaryAfterATornLine() throws {
        let dir = TestSupport.temporaryDirectory("sanagraph-batch-json")
        defer { try? FileManager.default.removeItem(at: dir) }
        let sweep = ["--sweep", "seed=0..1", "--set", "guidance=4.5"]
        let r = try CLI.run(Self.args(["--json", "--manifest", "out/m.jsonl"], sweep: sweep), directory: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let events = PipelineSupport.events(r.stdout).compactMap { $0["event"] as? String }
        #expect(events.first == "batch_started" && events.last == "batch_finished")
        #expect(events.filter { $0 == "item_finished" }.count == 2 && events.filter { $0 == "run_finished" }.count == 2)

        // A writer killed mid-line: readers skip the fragment with a warning.
        let manifest = dir.appendingPathComponent("out/m.jsonl").path
        let handle = try #require(FileHandle(forWritingAtPath: manifest))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("{\"attempts\":1,\"cache_hi".utf8))
        try handle.close()
        let summary = try CLI.run(["manifest", "summarize", manifest])
        #expect(summary.status == 0 && summary.stdout.contains("items: 2 (2 ok)"), "\(summary.stdout)")
        #expect(summary.stderr.contains("m.jsonl:3: skipped a torn last line"))

        let plan = try CLI.run(Self.args(["--manifest", "out/m.jsonl"], sweep: ["--sweep", "seed=0..3", "--set", "guidance=4.5"])
                                .map { $0 == "run" ? "plan" : $0 }, directory: dir)
        #expect(plan.status == 0, "\(plan.stderr)")
        #expect(plan.stdout.contains("sweep of 4 items"), "\(plan.stdout)")
        #expect(plan.stdout.contains("2 done (outputs exist with matching provenance), 2 to run"), "\(plan.stdout)")
        #expect(plan.stdout.contains("per item (2 ran): median") && plan.stdout.contains("peak memory up to"), "\(plan.stdout)")
    }
}
