import Foundation
import GraphRuntime
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// End-to-end tests of the persistent disk cache through the built binary: separate processes share a cache
/// folder; real nodes (upscale.load → upscale.apply → image.resize → tensor.save on a PNG fixture).
@Suite struct CacheCLITests {
    /// A cache folder, an output folder and the graph's arguments.
    struct Setup {
        let dir = TestSupport.temporaryDirectory("sanagraph-cache-cli")
        var cacheDir: String { dir.appendingPathComponent("cache").path }
        func out(_ name: String) -> String { dir.appendingPathComponent(name + ".safetensors").path }

        func runArgs(out: String, scale: Double = 0.5, extra: [String] = []) -> [String] {
            ["run", TestSupport.fixture("Cache/upscale.yaml"),
             "--set", "weights=\(TestSupport.fixture("Upscaler/rrdbnet_x4.safetensors"))",
             "--set", "input=\(TestSupport.fixture("ImageIO/rgb8.png"))",
             "--set", "scale=\(scale)", "--set", "out=\(out)"] + extra
        }

        func cleanup() { try? FileManager.default.removeItem(at: dir) }
    }

    struct Event {
        var name: String
        var object: [String: Any]
        var node: String? { object["node"] as? String }
    }

    static func events(_ stdout: String) throws -> [Event] {
        try stdout.split(separator: "\n").map { line in
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return Event(name: object["event"] as? String ?? "", object: object)
        }
    }

    /// node -> "run" | "memory" | "disk" from node_finished, and "skipped" from node_skipped.
    static func outcomes(_ events: [Event]) -> [String: String] {
        var result: [String: String] = [:]
        for e in events {
            guard let node = e.node else { continue }
            if e.name == "node_finished" {
                result[node] = (e.object["cached"] as? Bool == true) ? (e.object["cache"] as? String ?? "?") : "run"
            } else if e.name == "node_skipped" {
                result[node] = "skipped"
            }
        }
        return result
    }

    static func bytes(_ path: String) -> Data? { FileManager.default.contents(atPath: path) }

    /// Every blob in the cache folder.
    static func blobs(_ cacheDir: String) -> [String] {
        let root = cacheDir + "/entries"
        return ((try? FileManager.default.subpathsOfDirectory(atPath: root)) ?? [])
            .filter { $0.hasSuffix(".safetensors") }.map { root + "/" + $0 }.sorted()
    }

    // MARK: Across processes

    @Test func secondProcessWithADownstreamChangeTakesUpstreamFromDiskAndSkipsTheLoader() throws {
        let s = Setup()
        defer { s.cleanup() }
        let first = try CLI.run(s.runArgs(out: s.out("first"), scale: 0.5, extra: ["--json", "--cache-dir", s.cacheDir]))
        #expect(first.status == 0, "\(first.stderr)")
        #expect(Self.outcomes(try Self.events(first.stdout))
                == ["model": "run", "image": "run", "up": "run", "small": "run", "save": "run"])

        let second = try CLI.run(s.runArgs(out: s.out("second"), scale: 0.25,
                                           extra: ["--json", "--cache-dir", s.cacheDir]))
        #expect(second.status == 0, "\(second.stderr)")
        let events = try Self.events(second.stdout)
        #expect(Self.outcomes(events)
                == ["model": "skipped", "image": "disk", "up": "disk", "small": "run", "save": "run"])
        let summary = try #require(events.last)
        #expect(summary.name == "run_finished" && summary.object["nodes_cached"] as? Int == 2
                && summary.object["nodes_skipped"] as? Int == 1 && summary.object["nodes_run"] as? Int == 2)

        // A cold run (no cache) of the second graph writes the same bytes.
        let cold = try CLI.run(s.runArgs(out: s.out("cold"), scale: 0.25, extra: ["--quiet", "--cache", "off"]))
        #expect(cold.status == 0, "\(cold.stderr)")
        let warmBytes = try #require(Self.bytes(s.out("second")))
        #expect(Self.bytes(s.out("cold")) == warmBytes)

        // The same graph again: everything but the output from disk; the model is never loaded.
        let third = try CLI.run(s.runArgs(out: s.out("third"), scale: 0.25, extra: ["--json", "--cache-dir", s.cacheDir]))
        #expect(Self.outcomes(try Self.events(third.stdout))
                == ["model": "skipped", "image": "disk", "up": "disk", "small": "disk", "save": "run"])
        #expect(Self.bytes(s.out("third")) == warmBytes)
    }

    @Test func environmentVariableChoosesTheFolderAndHumanOutputSaysSkippedAndCached() throws {
        let s = Setup()
        defer { s.cleanup() }
        let env = ["SANAGRAPH_CACHE_DIR": s.cacheDir]
        let first = try CacheCLI.run(s.runArgs(out: s.out("a")), environment: env)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(!Self.blobs(s.cacheDir).isEmpty)
        let second = try CacheCLI.run(s.runArgs(out: s.out("b")), environment: env)
        #expect(second.stderr.contains("model: skipped"), "\(second.stderr)")
        #expect(second.stderr.contains("small: cached (disk)"), "\(second.stderr)")
        // --cache off in the environment wins over nothing, and --cache on the command line wins over it.
        let off = try CacheCLI.run(s.runArgs(out: s.out("c"), extra: ["--json"]),
                                   environment: env.merging(["SANAGRAPH_CACHE": "off"]) { $1 })
        #expect(Self.outcomes(try Self.events(off.stdout))["up"] == "run")
        let bad = try CacheCLI.run(s.runArgs(out: s.out("d")), environment: ["SANAGRAPH_CACHE": "maybe"])
        #expect(bad.status == 2 && bad.stderr.contains("SANAGRAPH_CACHE"), "\(bad.stderr)")
    }

    @Test func severalProcessesAtOnceAllSucceedWithIdenticalOutputsAndACleanStore() throws {
        let s = Setup()
        defer { s.cleanup() }
        for round in 0..<2 { // a cold start, then a warm one, each with 4 processes racing
            var processes: [(Process, String)] = []
            for i in 0..<4 {
                let out = s.out("r\(round)-p\(i)")
                let p = Process()
                p.executableURL = try CLI.executable()
                p.arguments = s.runArgs(out: out, extra: ["--quiet", "--cache-dir", s.cacheDir])
                p.standardInput = FileHandle.nullDevice
                p.standardOutput = FileHandle.nullDevice
                p.standardError = FileHandle.nullDevice
                processes.append((p, out))
            }
            for (p, _) in processes { try p.run() }
            for (p, _) in processes { p.waitUntilExit() }
            #expect(processes.allSatisfy { $0.0.terminationStatus == 0 })
            let outputs = processes.map { Self.bytes($0.1) }
            #expect(outputs.allSatisfy { $0 != nil && $0 == outputs[0] })
            #expect(Self.bytes(s.out("r0-p0")) == outputs[0])
        }
        let verify = try CLI.run(["cache", "verify", "--cache-dir", s.cacheDir])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        #expect(verify.stdout.contains("all good"))
        // image, up, small: one blob each, and no temporary files left behind.
        #expect(Self.blobs(s.cacheDir).count == 3)
        let leftovers = ((try? FileManager.default.subpathsOfDirectory(atPath: s.cacheDir)) ?? [])
            .filter { $0.contains(".tmp-") }
        #expect(leftovers.isEmpty, "\(leftovers)")
    }

    // MARK: Damage

    @Test(arguments: ["flip", "truncate", "delete"])
    func damagedStoreGivesWarningsAndTheSameOutput(damage: String) throws {
        let s = Setup()
        defer { s.cleanup() }
        let first = try CLI.run(s.runArgs(out: s.out("first"), extra: ["--quiet", "--cache-dir", s.cacheDir]))
        #expect(first.status == 0, "\(first.stderr)")
        let blobs = Self.blobs(s.cacheDir)
        #expect(blobs.count == 3)
        for blob in blobs {
            var data = [UInt8](try #require(Self.bytes(blob)))
            switch damage {
            case "flip": data[data.count - 7] ^= 0x10 // in the last tensor's bytes
            case "truncate": data = Array(data.prefix(data.count - 9))
            default: break
            }
            if damage == "delete" {
                try FileManager.default.removeItem(atPath: blob)
            } else {
                try Data(data).write(to: URL(fileURLWithPath: blob))
            }
        }
        if damage != "delete" {
            let verify = try CLI.run(["cache", "verify", "--cache-dir", s.cacheDir])
            #expect(verify.status == 1 && verify.stdout.contains("found 3 bad"), "\(verify.stdout)")
        }
        let again = try CLI.run(s.runArgs(out: s.out("again"), extra: ["--json", "--cache-dir", s.cacheDir]))
        #expect(again.status == 0, "\(again.stderr)")
        let events = try Self.events(again.stdout)
        let warnings = events.filter { $0.name == "cache_warning" }
        if damage == "delete" {
            #expect(warnings.isEmpty)
        } else {
            // `small` is read first; its blob is bad, so `up` is needed, then `image` (and the model loads).
            #expect(Set(warnings.compactMap(\.node)) == ["small", "up", "image"], "\(again.stdout)")
            #expect(again.stderr.contains("corrupt cache entry"))
        }
        #expect(Self.outcomes(events) == ["model": "run", "image": "run", "up": "run", "small": "run", "save": "run"])
        #expect(Self.bytes(s.out("again")) == Self.bytes(s.out("first")))
        let verify = try CLI.run(["cache", "verify", "--cache-dir", s.cacheDir])
        #expect(verify.status == 0 && verify.stdout.contains("all good"), "\(verify.stdout)")
    }

    // MARK: Modes and folders

    @Test func readOnlyReadsButNeverWritesAndOffUsesNothing() throws {
        let s = Setup()
        defer { s.cleanup() }
        // ro on a folder that does not exist: a warning, a normal run, nothing created.
        let ro0 = try CLI.run(s.runArgs(out: s.out("ro0"), extra: ["--cache", "ro", "--cache-dir", s.cacheDir]))
        #expect(ro0.status == 0 && ro0.stderr.contains("does not exist"), "\(ro0.stderr)")
        #expect(!FileManager.default.fileExists(atPath: s.cacheDir))
        // off: nothing created either.
        let off = try CLI.run(s.runArgs(out: s.out("off"), extra: ["--json", "--cache", "off", "--cache-dir", s.cacheDir]))
        #expect(off.status == 0)
        #expect(!FileManager.default.fileExists(atPath: s.cacheDir))
        #expect(!(try Self.events(off.stdout)).contains { $0.object["cached"] as? Bool == true })

        let rw = try CLI.run(s.runArgs(out: s.out("rw"), extra: ["--quiet", "--cache-dir", s.cacheDir]))
        #expect(rw.status == 0)
        let before = Self.blobs(s.cacheDir)
        let stamps = before.map { try? FileManager.default.attributesOfItem(atPath: $0)[.modificationDate] as? Date }
        let ro = try CLI.run(s.runArgs(out: s.out("ro"), scale: 0.25,
                                       extra: ["--json", "--cache", "ro", "--cache-dir", s.cacheDir]))
        #expect(ro.status == 0, "\(ro.stderr)")
        #expect(Self.outcomes(try Self.events(ro.stdout))["up"] == "disk")
        #expect(Self.blobs(s.cacheDir) == before) // the new `small` result was not written
        let after = before.map { try? FileManager.default.attributesOfItem(atPath: $0)[.modificationDate] as? Date }
        #expect(after == stamps) // and nothing was touched
        // off ignores a populated cache.
        let off2 = try CLI.run(s.runArgs(out: s.out("off2"), extra: ["--json", "--cache", "off", "--cache-dir", s.cacheDir]))
        #expect(Self.outcomes(try Self.events(off2.stdout))["up"] == "run")
        #expect(Self.bytes(s.out("off2")) == Self.bytes(s.out("rw")))
    }

    @Test func unusableCacheFolderWarnsAndTheRunStillSucceeds() throws {
        let s = Setup()
        defer { s.cleanup() }
        let file = s.dir.appendingPathComponent("a-file").path
        _ = FileManager.default.createFile(atPath: file, contents: Data([1]))
        let r = try CLI.run(s.runArgs(out: s.out("x"), extra: ["--json", "--cache-dir", file + "/cache"]))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("warning: cache folder \(file)/cache"), "\(r.stderr)")
        #expect(r.stderr.contains("running without the disk cache"))
        let events = try Self.events(r.stdout)
        #expect(events.first?.name == "cache_warning")
        #expect(Self.bytes(s.out("x")) != nil)
        // The maintenance commands, which need the folder, fail with the I/O code instead.
        let stats = try CLI.run(["cache", "stats", "--cache-dir", file])
        #expect(stats.status == 6 && stats.stderr.contains("not a folder"), "\(stats.stderr)")
    }

    @Test func planShowsDiskHitsAndSkippedLoaders() throws {
        let s = Setup()
        defer { s.cleanup() }
        _ = try CLI.run(s.runArgs(out: s.out("a"), extra: ["--quiet", "--cache-dir", s.cacheDir]))
        var args = s.runArgs(out: s.out("b"), scale: 0.25, extra: ["--cache-dir", s.cacheDir])
        args[0] = "plan"
        let plan = try CLI.run(args)
        #expect(plan.status == 0, "\(plan.stderr)")
        let lines = plan.stdout.split(separator: "\n").map(String.init)
        func row(_ node: String) -> String { lines.first { $0.contains(" \(node) ") } ?? "" }
        #expect(row("model").contains(" skip "), "\(plan.stdout)")
        #expect(row("up").contains("cached (disk)") && row("image").contains("cached (disk)"), "\(plan.stdout)")
        #expect(row("small").contains(" run ") && row("save").contains("always"), "\(plan.stdout)")
        #expect(!FileManager.default.fileExists(atPath: s.out("b")))
        // --cache off: the plan ignores the store.
        let offPlan = try CLI.run(args + ["--cache", "off"])
        #expect(offPlan.stdout.split(separator: "\n").first { $0.contains(" up ") }?.contains(" run ") == true)
    }

    // MARK: Maintenance commands

    @Test func statsGcClearAndVerify() throws {
        let s = Setup()
        defer { s.cleanup() }
        let empty = try CLI.run(["cache", "stats", "--cache-dir", s.cacheDir])
        #expect(empty.status == 0 && empty.stdout.contains("no cache yet"))
        _ = try CLI.run(s.runArgs(out: s.out("a"), scale: 0.5, extra: ["--quiet", "--cache-dir", s.cacheDir]))
        _ = try CLI.run(s.runArgs(out: s.out("b"), scale: 0.25, extra: ["--quiet", "--cache-dir", s.cacheDir]))
        let stats = try CLI.run(["cache", "stats", "--cache-dir", s.cacheDir])
        #expect(stats.status == 0 && stats.stdout.contains("entries: 4"), "\(stats.stdout)")
        let sizes = Self.blobs(s.cacheDir).map { (try? FileManager.default.attributesOfItem(atPath: $0)[.size] as? Int) ?? 0 }
        #expect(stats.stdout.contains("(\(sizes.reduce(0, +)) bytes)"))

        let verify = try CLI.run(["cache", "verify", "--cache-dir", s.cacheDir])
        #expect(verify.status == 0 && verify.stdout.contains("all good"), "\(verify.stdout)")

        // gc to a size: least recently used first. The biggest blob is `up`; keeping only a few bytes removes all.
        let gcNone = try CLI.run(["cache", "gc", "--max", "1G", "--cache-dir", s.cacheDir])
        #expect(gcNone.status == 0 && gcNone.stdout.contains("removed 0 entries"), "\(gcNone.stdout)")
        let gc = try CLI.run(["cache", "gc", "--max", "0", "--cache-dir", s.cacheDir])
        #expect(gc.status == 0 && gc.stdout.contains("removed 4 entries"), "\(gc.stdout)")
        #expect(Self.blobs(s.cacheDir).isEmpty)
        let badSize = try CLI.run(["cache", "gc", "--max", "lots", "--cache-dir", s.cacheDir])
        #expect(badSize.status == 2, "\(badSize.stderr)")

        _ = try CLI.run(s.runArgs(out: s.out("c"), extra: ["--quiet", "--cache-dir", s.cacheDir]))
        let clear = try CLI.run(["cache", "clear", "--cache-dir", s.cacheDir])
        #expect(clear.status == 0 && clear.stdout.contains("removed 3 entries"), "\(clear.stdout)")
        let after = try CLI.run(["cache", "stats", "--cache-dir", s.cacheDir])
        #expect(after.stdout.contains("entries: 0"))
    }

    @Test func sizeCapOnRunEvictsOldEntries() throws {
        let s = Setup()
        defer { s.cleanup() }
        _ = try CLI.run(s.runArgs(out: s.out("a"), extra: ["--quiet", "--cache-dir", s.cacheDir]))
        let total = Self.blobs(s.cacheDir).reduce(0) {
            $0 + ((try? FileManager.default.attributesOfItem(atPath: $1)[.size] as? Int) ?? 0)
        }
        // A cap just above one run's entries: a run with another scale must evict to fit its new entry.
        let r = try CLI.run(s.runArgs(out: s.out("b"), scale: 0.25,
                                      extra: ["--quiet", "--cache-dir", s.cacheDir, "--cache-max", "\(total + 10)"]))
        #expect(r.status == 0, "\(r.stderr)")
        let after = Self.blobs(s.cacheDir).reduce(0) {
            $0 + ((try? FileManager.default.attributesOfItem(atPath: $1)[.size] as? Int) ?? 0)
        }
        #expect(after <= total + 10)
        #expect(Self.blobs(s.cacheDir).count < 4)
        let bad = try CLI.run(s.runArgs(out: s.out("c"), extra: ["--cache-max", "huge"]))
        #expect(bad.status == 2)
    }

    @Test(arguments: [["cache"], ["cache", "stats"], ["cache", "gc"], ["cache", "clear"], ["cache", "verify"]])
    func cacheHelpWorks(command: [String]) throws {
        let r = try CLI.run(command + ["--help"])
        #expect(r.status == 0 && r.stdout.contains("USAGE:"))
    }
}

/// Runs the binary with extra environment variables (HOME and XDG_CACHE_HOME point into a temporary folder so
/// a test never touches the real cache).
enum CacheCLI {
    static func run(_ arguments: [String], environment: [String: String]) throws -> CLI.Result {
        let tmp = TestSupport.temporaryDirectory("sanagraph-cache-cli-env")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let outURL = tmp.appendingPathComponent("stdout"), errURL = tmp.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let process = Process()
        process.executableURL = try CLI.executable()
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["HOME"] = tmp.path
        env["XDG_CACHE_HOME"] = tmp.path + "/xdg"
        env["SANAGRAPH_CACHE_DIR"] = nil
        env["SANAGRAPH_CACHE"] = nil
        env.merge(environment) { $1 }
        process.environment = env
        process.currentDirectoryURL = tmp
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        try process.run()
        process.waitUntilExit()
        return CLI.Result(status: process.terminationStatus,
                          stdout: String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
                          stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self))
    }
}
