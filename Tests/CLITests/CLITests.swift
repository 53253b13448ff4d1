import Foundation
import GraphRuntime
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// End-to-end tests of the built `sanagraph` binary on the graphs in Tests/Fixtures/CLI.
@Suite struct CLITests {
    // MARK: validate

    @Test func validateReportsEveryErrorWithItsLine() throws {
        let file = TestSupport.fixture("CLI/invalid.yaml")
        let r = try CLI.run(["validate", file])
        #expect(r.status == 2)
        let errors = r.stderr.split(separator: "\n").filter { $0.contains(": error: ") }
        // One mistake per node, on lines 6 to 10.
        let lines = Set(errors.compactMap { line -> Int? in
            guard line.hasPrefix(file + ":") else { return nil }
            return Int(line.dropFirst(file.count + 1).prefix { $0.isNumber })
        })
        #expect(errors.count >= 5, "\(r.stderr)")
        #expect(lines == [6, 7, 8, 9, 10], "\(r.stderr)")
        #expect(r.stderr.contains("latent.noize"))
        #expect(r.stderr.contains("'latent.noise'")) // did-you-mean
        #expect(r.stderr.contains("widht"))
        #expect(r.stderr.contains("bb"))
        #expect(r.stderr.contains("F64"))
        #expect(r.stdout.isEmpty)
    }

    @Test func validateAcceptsAGoodGraph() throws {
        let r = try CLI.run(["validate", TestSupport.fixture("CLI/noise.yaml"), "--set", "out=x.safetensors"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("ok"))
    }

    @Test func malformedSetIsAnInvalidParamsError() throws {
        let r = try CLI.run(["validate", TestSupport.fixture("CLI/noise.yaml"), "--set", "no-equals-sign"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("--set expects name=value"))
    }

    // MARK: run

    @Test func runWritesTheOutputAndExitsZero() throws {
        let dir = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("noise.safetensors").path
        let r = try CLI.run(["run", TestSupport.fixture("CLI/noise.yaml"), "--set", "out=\(out)", "--set", "seed=3"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.isEmpty) // progress goes to stderr
        #expect(r.stderr.contains("finished"))
        let data = try #require(FileManager.default.contents(atPath: out))
        // 4 channels x 8 x 8 float32 values after the header, and the header names the tensor.
        #expect(data.count > 4 * 64 * 4)
        #expect(String(decoding: data.prefix(300), as: UTF8.self).contains("\"noise\""))
        // The same seed gives the same bytes in a second process.
        let out2 = dir.appendingPathComponent("again.safetensors").path
        let r2 = try CLI.run(["run", TestSupport.fixture("CLI/noise.yaml"), "--quiet", "--set", "out=\(out2)",
                              "--set", "seed=3"])
        #expect(r2.status == 0)
        #expect(r2.stderr.isEmpty)
        #expect(FileManager.default.contents(atPath: out2) == data)
    }

    @Test func runFromAPNGReproducesItsGraphAndParamsWithSetOverrides() throws {
        let dir = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let first = dir.appendingPathComponent("first.png").path
        let r = try CLI.run(["run", TestSupport.fixture("CLI/resize.yaml"), "--quiet", "--set",
                             "input=\(TestSupport.fixture("ImageIO/rgb8.png"))", "--set", "out=\(first)",
                             "--set", "scale=3"])
        #expect(r.status == 0, "\(r.stderr)")
        let firstBytes = try #require(FileManager.default.contents(atPath: first))

        // Same graph and params from the PNG alone: identical pixels, so identical bytes but for metadata time.
        let again = dir.appendingPathComponent("again.png").path
        let r2 = try CLI.run(["run", "--from", first, "--quiet", "--set", "out=\(again)"])
        #expect(r2.status == 0, "\(r2.stderr)")
        let inspectFirst = try CLI.run(["inspect", first, "--json"])
        let inspectAgain = try CLI.run(["inspect", again, "--json"])
        #expect(inspectFirst.status == 0 && inspectAgain.status == 0)
        #expect(inspectAgain.stdout.contains("resize.yaml"))
        let againBytes = try #require(FileManager.default.contents(atPath: again))
        #expect(againBytes.count > 0 && firstBytes.count > 0)

        // An override changes the result: scale 1 gives a smaller picture than scale 3.
        let smaller = dir.appendingPathComponent("smaller.png").path
        let r3 = try CLI.run(["run", "--from", first, "--quiet", "--set", "out=\(smaller)", "--set", "scale=1"])
        #expect(r3.status == 0, "\(r3.stderr)")
        let w = { (path: String) -> UInt32 in
            let d = FileManager.default.contents(atPath: path) ?? Data()
            return d.count >= 24 ? d[16..<20].reduce(0) { $0 << 8 | UInt32($1) } : 0   // IHDR width
        }
        #expect(w(again) == w(first))
        #expect(w(smaller) * 3 == w(first))

        // A PNG without SanaGraph metadata can't be re-run.
        let foreign = try CLI.run(["run", "--from", TestSupport.fixture("ImageIO/rgb8.png")])
        #expect(foreign.status == 2, "\(foreign.stderr)")
        #expect(foreign.stderr.contains("rgb8.png"))
    }

    @Test func jsonEventsOfARepeatedRunShowCacheHits() throws {
        let dir = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("noise.safetensors").path
        let r = try CLI.run(["run", TestSupport.fixture("CLI/noise.yaml"), "--json", "--repeat", "2",
                             "--set", "out=\(out)"])
        #expect(r.status == 0, "\(r.stderr)")
        let events = try r.stdout.split(separator: "\n").map { line -> [String: Any] in
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8))
            return try #require(object as? [String: Any], "not a JSON object: \(line)")
        }
        #expect(events.allSatisfy { $0["event"] is String })
        let finished = events.filter { $0["event"] as? String == "node_finished" }
            .map { "\($0["node"] as? String ?? "?"):\($0["cached"] as? Bool ?? false)" }
        #expect(finished == ["noise:false", "save:false", "noise:true", "save:false"])
        let summaries = events.filter { $0["event"] as? String == "run_finished" }
        #expect(summaries.count == 2)
        #expect(summaries.last?["ok"] as? Bool == true)
        #expect(summaries.last?["exit_code"] as? Int == 0)
        #expect(summaries.last?["nodes_cached"] as? Int == 1)
        #expect(events.last?["event"] as? String == "run_finished")
        #expect(events.contains { $0["event"] as? String == "node_started" && $0["node"] as? String == "noise" })
        #expect(FileManager.default.fileExists(atPath: out))
    }

    @Test func invalidGraphExitsTwoAndRunsNothing() throws {
        let r = try CLI.run(["run", TestSupport.fixture("CLI/invalid.yaml"), "--json"])
        #expect(r.status == 2)
        #expect(r.stderr.contains(": error: "))
        // The JSON log still ends with a summary.
        let last = try #require(r.stdout.split(separator: "\n").last)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
        #expect(object["event"] as? String == "run_finished")
        #expect(object["exit_code"] as? Int == 2)
    }

    @Test func wrongParamTypeFromSetExitsTwo() throws {
        let r = try CLI.run(["run", TestSupport.fixture("CLI/noise.yaml"), "--set", "out=x.safetensors",
                             "--set", "seed=abc"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("seed"))
    }

    @Test func missingModelFileExitsFourNamingTheFile() throws {
        let dir = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = dir.appendingPathComponent("missing.safetensors").path
        let out = dir.appendingPathComponent("copy.safetensors").path
        let r = try CLI.run(["run", TestSupport.fixture("CLI/load.yaml"), "--set", "input=\(missing)",
                             "--set", "out=\(out)"])
        #expect(r.status == 4, "\(r.stderr)")
        #expect(r.stderr.contains("error: "))
        #expect(r.stderr.contains(missing))
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test func runCopiesATensorBetweenFiles() throws {
        let dir = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let noise = dir.appendingPathComponent("noise.safetensors").path
        let copy = dir.appendingPathComponent("copy.safetensors").path
        #expect(try CLI.run(["run", TestSupport.fixture("CLI/noise.yaml"), "--quiet", "--set", "out=\(noise)"])
            .status == 0)
        let r = try CLI.run(["run", TestSupport.fixture("CLI/load.yaml"), "--json", "--set", "input=\(noise)",
                             "--set", "out=\(copy)"])
        #expect(r.status == 0, "\(r.stderr)")
        let data = try #require(FileManager.default.contents(atPath: copy))
        #expect(String(decoding: data.prefix(300), as: UTF8.self).contains("\"copy\""))
    }

    @Test func unwritableOutputExitsWithTheIOCode() throws {
        let dir = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // A regular file where a folder is needed.
        let blocker = dir.appendingPathComponent("file")
        try Data("x".utf8).write(to: blocker)
        let out = blocker.appendingPathComponent("sub/noise.safetensors").path
        let r = try CLI.run(["run", TestSupport.fixture("CLI/noise.yaml"), "--set", "out=\(out)"])
        #expect(r.status == 6, "\(r.stderr)")
        #expect(r.stderr.contains(out))
    }

    @Test func heldLockExitsFiveAndRunsNothing() throws {
        let dir = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let lockPath = dir.appendingPathComponent("run.lock").path
        let out = dir.appendingPathComponent("noise.safetensors").path
        let held = try RunLock.acquire(path: lockPath)
        let r = try CLI.run(["run", TestSupport.fixture("CLI/noise.yaml"), "--lock", lockPath, "--set", "out=\(out)"])
        #expect(r.status == 5)
        #expect(r.stderr.contains(lockPath))
        #expect(r.stderr.contains("held"))
        #expect(!FileManager.default.fileExists(atPath: out))
        held.release()
        let again = try CLI.run(["run", TestSupport.fixture("CLI/noise.yaml"), "--lock", lockPath, "--quiet",
                                 "--set", "out=\(out)"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(FileManager.default.fileExists(atPath: out))
        // The lock was released at exit: we can take it again.
        try RunLock.acquire(path: lockPath).release()
    }

    @Test func sigintStopsTheRunWithExit130AndNoOutput() throws {
        let dir = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("noise.safetensors").path
        // Noise big enough (4 x 2048 x 2048 floats, about two seconds) that the signal lands while it is
        // generated; the run must stop before the saver.
        let process = try CLI.start(["run", TestSupport.fixture("CLI/noise.yaml"), "--json",
                                     "--set", "size=16384", "--set", "out=\(out)"])
        var seen = ""
        while !seen.contains("\"event\":\"node_started\",\"node\":\"noise\"") {
            let chunk = process.stdout.availableData
            if chunk.isEmpty { break }
            seen += String(decoding: chunk, as: UTF8.self)
        }
        kill(process.process.processIdentifier, SIGINT)
        let rest = process.stdout.readDataToEndOfFile()
        process.process.waitUntilExit()
        seen += String(decoding: rest, as: UTF8.self)
        #expect(process.process.terminationReason == .exit)
        #expect(process.process.terminationStatus == 130, "\(seen)")
        #expect(!seen.contains("\"event\":\"node_started\",\"node\":\"save\""))
        #expect(seen.contains("\"exit_code\":130"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }

    // MARK: inspection commands

    @Test func nodesListsTheBuiltinTypes() throws {
        let r = try CLI.run(["nodes"])
        #expect(r.status == 0)
        for type in ["tensor.load", "tensor.save", "latent.noise"] {
            #expect(r.stdout.split(separator: "\n").contains { $0.hasPrefix(type + " ") }, "\(type) missing")
        }
    }

    @Test func describeShowsSocketsAndParams() throws {
        let r = try CLI.run(["describe", "latent.noise"])
        #expect(r.status == 0)
        #expect(r.stdout.hasPrefix("latent.noise (version "))
        #expect(r.stdout.contains("outputs:\n  latent: Latent"))
        #expect(r.stdout.contains("  width: int = 1024, range 0...65536"))
        #expect(r.stdout.contains("  rng: one of torch = \"torch\""))
        let save = try CLI.run(["describe", "tensor.save"])
        #expect(save.stdout.contains("output node: always runs, never cached"))
        #expect(save.stdout.contains("  path: path (required)"))
    }

    @Test func describeUnknownNodeSuggestsAndExitsTwo() throws {
        let r = try CLI.run(["describe", "tensor.sav"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("unknown node type 'tensor.sav'"))
        #expect(r.stderr.contains("did you mean 'tensor.save'"))
    }

    @Test func planShowsOrderCacheAndReleasesWithoutRunning() throws {
        let dir = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("noise.safetensors").path
        let r = try CLI.run(["plan", TestSupport.fixture("CLI/noise.yaml"), "--set", "out=\(out)"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        let noise = try #require(lines.first { $0.hasPrefix("1 ") })
        let save = try #require(lines.first { $0.hasPrefix("2 ") })
        #expect(noise.contains("noise") && noise.contains("latent.noise") && noise.contains(" run "))
        #expect(save.contains("tensor.save") && save.contains("always") && save.contains("noise.latent"))
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test func dotAndSchemaPrintTheirFormats() throws {
        let dot = try CLI.run(["dot", TestSupport.fixture("CLI/noise.yaml"), "--set", "out=x.safetensors"])
        #expect(dot.status == 0, "\(dot.stderr)")
        #expect(dot.stdout.contains("digraph"))
        #expect(dot.stdout.contains("noise") && dot.stdout.contains("save"))
        let schema = try CLI.run(["schema"])
        #expect(schema.status == 0)
        let object = try JSONSerialization.jsonObject(with: Data(schema.stdout.utf8)) as? [String: Any]
        #expect(object != nil)
        #expect(schema.stdout.contains("latent.noise"))
    }

    @Test(arguments: [[], ["run"], ["validate"], ["plan"], ["nodes"], ["describe"], ["dot"], ["schema"]])
    func helpWorksEverywhere(command: [String]) throws {
        let r = try CLI.run(command + ["--help"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("USAGE:"))
    }

    @Test(arguments: [["run"], ["run", "g.yaml", "--repeat", "0"], ["run", "g.yaml", "--cache-memory", "lots"],
                      ["frobnicate"]])
    func usageErrorsExitWithTheParserCode(arguments: [String]) throws {
        let r = try CLI.run(arguments)
        #expect(r.status == 64, "\(r.stderr)")
        #expect(r.stderr.contains("Error:") || r.stderr.contains("error:"))
    }

    @Test func runHelpDocumentsExitCodes() throws {
        let r = try CLI.run(["run", "--help"])
        #expect(r.stdout.contains("130 interrupted"))
        #expect(r.stdout.contains("--lock"))
    }
}

/// Finds and runs the built binary.
enum CLI {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The `sanagraph` executable beside the test bundle (both are built into the same products folder).
    static let binary: URL? = {
        let fm = FileManager.default
        var folders: [URL] = []
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        folders.append(exe.deletingLastPathComponent())
        folders.append(Bundle.main.bundleURL)
        folders.append(Bundle.main.bundleURL.deletingLastPathComponent())
        if let arg0 = CommandLine.arguments.first {
            folders.append(URL(fileURLWithPath: arg0).resolvingSymlinksInPath().deletingLastPathComponent())
        }
        return folders.map { $0.appendingPathComponent("sanagraph") }.first { fm.isExecutableFile(atPath: $0.path) }
    }()

    static func executable() throws -> URL {
        guard let binary else {
            throw CLIError("sanagraph binary not found beside the test bundle; build it first (swift build)")
        }
        return binary
    }

    /// The environment for a child process: a fresh disk cache folder per run, so tests neither see nor fill the
    /// user's `~/.cache/sanagraph` (a test that wants a shared cache passes `--cache-dir`, which wins).
    static func environment(cacheIn folder: URL) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["SANAGRAPH_CACHE_DIR"] = folder.appendingPathComponent("cache").path
        env["SANAGRAPH_PLUGIN_PATH"] = nil  // a developer's plugins must not change what tests see
        return env
    }

    /// Runs the binary (or `executable`) to completion with stdout and stderr captured (through files: no pipe
    /// deadlocks). `environment` adds to (or, with nil values, removes from) the child's environment.
    static func run(_ arguments: [String], directory: URL? = nil, executable: URL? = nil,
                    environment extra: [String: String?] = [:]) throws -> Result {
        let tmp = TestSupport.temporaryDirectory("sanagraph-cli")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let outURL = tmp.appendingPathComponent("stdout"), errURL = tmp.appendingPathComponent("stderr")
        FileManager.default.createFile(atPath: outURL.path, contents: nil)
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let process = Process()
        process.executableURL = try executable ?? Self.executable()
        process.arguments = arguments
        var env = environment(cacheIn: tmp)
        for (name, value) in extra { env[name] = value }
        process.environment = env
        process.currentDirectoryURL = directory ?? tmp
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        try process.run()
        process.waitUntilExit()
        return Result(status: process.terminationStatus,
                      stdout: String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
                      stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self))
    }

    /// A running binary whose stdout is read through a pipe (stderr is discarded).
    struct Running {
        var process: Process
        var stdout: FileHandle
    }

    static func start(_ arguments: [String]) throws -> Running {
        let process = Process()
        process.executableURL = try executable()
        process.arguments = arguments
        process.environment = environment(cacheIn: TestSupport.temporaryDirectory("sanagraph-cli-start"))
        let pipe = Pipe()
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        return Running(process: process, stdout: pipe.fileHandleForReading)
    }
}

struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
