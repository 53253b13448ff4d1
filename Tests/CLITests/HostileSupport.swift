import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

// The machinery of the hostile-input suite (HostileInputTests): a seeded generator, a runner that catches
// crashes and hangs, and the checks every case makes. `make test` runs each generator a few times;
// `make fuzz` sets SANAGRAPH_FUZZ_ITERATIONS (and SANAGRAPH_FUZZ_SEED) for many more.

enum Fuzz {
    /// Cases per generator: a few under `make test`, many under `make fuzz`.
    static let iterations = ProcessInfo.processInfo.environment["SANAGRAPH_FUZZ_ITERATIONS"].flatMap(Int.init) ?? 6
    static let seed = ProcessInfo.processInfo.environment["SANAGRAPH_FUZZ_SEED"].flatMap(UInt64.init) ?? 23
    /// A run that takes longer is a hang.
    static let timeout: Double = 30

    /// A generator for one class of cases, seeded from the suite seed and the class name (so classes are
    /// independent of each other's draws).
    static func random(_ name: String) -> SeededRandom {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in name.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return SeededRandom(seed: seed ^ h)
    }
}

/// One run of the binary under the suite's rules.
struct HostileRun {
    var arguments: [String]
    var status: Int32
    var signaled: Bool
    var timedOut: Bool
    var stdout: String
    var stderr: String
    var seconds: Double

    /// "a crash": a signal, a trap's exit status, or the Swift runtime's crash report.
    var crashed: Bool {
        signaled || [132, 134, 135, 136, 139].contains(status) || stderr.contains("Swift runtime failure")
            || stderr.contains("Program crashed") || stderr.contains("Fatal error")
    }

    var shown: String {
        "sanagraph \(arguments.map { $0.count > 120 ? String($0.prefix(120)) + "…" : $0 }.joined(separator: " ")) "
            + "-> status \(status)\(signaled ? " (signal)" : "")\(timedOut ? " (timed out)" : ""); stderr: "
            + String(stderr.prefix(600))
    }
}

enum Hostile {
    /// Runs the binary (with a fresh cache folder unless the arguments name one), killing it after the timeout.
    /// `environment` adds to the test's environment; `shell` runs it under `/bin/sh -c` with that prefix
    /// (e.g. `ulimit -f 8;`). `onStart` gets the pid (for signals).
    static func run(_ arguments: [String], in directory: URL, environment: [String: String] = [:],
                    shell: String? = nil, timeout: Double = Fuzz.timeout,
                    onStart: ((Int32) -> Void)? = nil) throws -> HostileRun {
        let outURL = directory.appendingPathComponent(".stdout-\(UUID().uuidString)")
        let errURL = directory.appendingPathComponent(".stderr-\(UUID().uuidString)")
        FileManager.default.createFile(atPath: outURL.path, contents: nil)
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: outURL)
            try? FileManager.default.removeItem(at: errURL)
        }
        let process = Process()
        var env = CLI.environment(cacheIn: directory)
        env["SWIFT_BACKTRACE"] = "enable=no"
        env.merge(environment) { _, new in new }
        process.environment = env
        if let shell {
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            let quoted = ([try CLI.executable().path] + arguments).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
            process.arguments = ["-c", shell + " exec " + quoted.joined(separator: " ")]
        } else {
            process.executableURL = try CLI.executable()
            process.arguments = arguments
        }
        process.currentDirectoryURL = directory
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        let start = Date()
        try process.run()
        onStart?(process.processIdentifier)
        var timedOut = false
        while process.isRunning {
            if Date().timeIntervalSince(start) > timeout {
                timedOut = true
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                break
            }
            usleep(5_000)
        }
        process.waitUntilExit()
        return HostileRun(arguments: arguments, status: process.terminationStatus,
                          signaled: process.terminationReason == .uncaughtSignal, timedOut: timedOut,
                          stdout: String(decoding: (try? Data(contentsOf: outURL)) ?? Data(), as: UTF8.self),
                          stderr: String(decoding: (try? Data(contentsOf: errURL)) ?? Data(), as: UTF8.self),
                          seconds: Date().timeIntervalSince(start))
    }

    /// The suite's rules for one run: no crash, no hang, an exit code from `allowed`, and (when it failed) a
    /// message that mentions one of `mentions`.
    static func expect(_ r: HostileRun, allowed: Set<Int32>, mentions: [String] = [],
                       sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!r.crashed, "crash: \(r.shown)", sourceLocation: sourceLocation)
        #expect(!r.timedOut, "hang: \(r.shown)", sourceLocation: sourceLocation)
        #expect(allowed.contains(r.status), "exit code not in \(allowed.sorted()): \(r.shown)",
                sourceLocation: sourceLocation)
        if r.status != 0 && !mentions.isEmpty && !r.crashed {
            #expect(mentions.contains { r.stderr.contains($0) }, "message names none of \(mentions): \(r.shown)",
                    sourceLocation: sourceLocation)
        }
        #expect(r.stderr.utf8.count < 1 << 20, "stderr is \(r.stderr.utf8.count) bytes", sourceLocation: sourceLocation)
    }

    /// Every file under `directory` (relative paths), hidden ones included; `.stdout-`/`.stderr-` captures and the
    /// cache folder are left out.
    static func files(in directory: URL) -> [String] {
        guard let e = FileManager.default.enumerator(atPath: directory.path) else { return [] }
        var out: [String] = []
        while let path = e.nextObject() as? String {
            if path == "cache" || path.hasPrefix("cache/") { continue }
            let name = (path as NSString).lastPathComponent
            if name.hasPrefix(".stdout-") || name.hasPrefix(".stderr-") { continue }
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: directory.appendingPathComponent(path).path, isDirectory: &isDir),
               !isDir.boolValue {
                out.append(path)
            }
        }
        return out.sorted()
    }

    /// `cache verify` on `cacheDir` exits 0 (or the folder does not exist).
    static func expectCleanCache(_ cacheDir: String, in directory: URL, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let r = try run(["cache", "verify", "--cache-dir", cacheDir], in: directory)
        #expect(r.status == 0 && !r.crashed, "cache not clean: \(r.shown) \(r.stdout)", sourceLocation: sourceLocation)
    }

    /// A fresh folder for one case.
    static func folder(_ name: String) -> URL { TestSupport.temporaryDirectory("hostile-\(name)") }

    static func write(_ text: String, _ url: URL) throws { try Data(text.utf8).write(to: url) }
}
