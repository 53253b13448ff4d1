import ArgumentParser
import Foundation
import SanaGraphKit
import GraphRuntime
import Logging

/// Disk cache options shared by `run` and `plan` (docs/cache.md).
struct CacheOptions: ParsableArguments {
    @Option(name: .customLong("cache-dir"),
            help: ArgumentHelp("The disk cache folder (default: $SANAGRAPH_CACHE_DIR, else "
                               + "$XDG_CACHE_HOME/sanagraph, else ~/.cache/sanagraph).", valueName: "dir"))
    var cacheDirectory: String?

    @Option(name: .customLong("cache"),
            help: ArgumentHelp("Disk cache mode: rw (read and write), ro (read only), off (default: rw, or "
                               + "$SANAGRAPH_CACHE).", valueName: "rw|ro|off"))
    var cacheMode: DiskCacheMode?

    @Option(name: .customLong("cache-max"),
            help: ArgumentHelp("Size cap of the disk cache; least recently used entries go first (default: "
                               + "$SANAGRAPH_CACHE_MAX, else 10G).", valueName: "size"))
    var cacheMax: ByteSize?

    private var environment: [String: String] { ProcessInfo.processInfo.environment }

    /// The mode from the option, else the environment (a bad value there is a usage error, exit 2).
    func mode() throws -> DiskCacheMode {
        if let cacheMode { return cacheMode }
        guard let text = environment["SANAGRAPH_CACHE"], !text.isEmpty else { return .readWrite }
        guard let mode = DiskCacheMode(rawValue: text) else {
            throw UsageError("SANAGRAPH_CACHE must be rw, ro or off, got '\(text)'")
        }
        return mode
    }

    func maxBytes() throws -> Int { try Self.maxBytes(option: cacheMax) }

    /// `option`, else `$SANAGRAPH_CACHE_MAX`, else the default cap.
    static func maxBytes(option: ByteSize?) throws -> Int {
        if let option { return option.bytes }
        guard let text = ProcessInfo.processInfo.environment["SANAGRAPH_CACHE_MAX"], !text.isEmpty else { return DiskCacheSetup.defaultMaxBytes }
        guard let n = ByteSize(argument: text) else {
            throw UsageError("SANAGRAPH_CACHE_MAX must be a size such as 500M or 2G (at most 1 EiB), got '\(text)'")
        }
        return n.bytes
    }

    var directory: String? { DiskCacheSetup.directory(option: cacheDirectory, environment: environment) }

    /// The store for a run (nil for `off` or when unusable: then a warning has been printed, and reported to
    /// `warn` for JSON output). A cache problem never fails a run.
    func openForRun(logger: Logger, warn: (String) -> Void) throws -> DiskCache? {
        let (store, warning) = DiskCacheSetup.open(mode: try mode(), directory: directory, maxBytes: try maxBytes(),
                                                   logger: logger)
        if let warning { warn(warning) }
        return store
    }
}

/// `sanagraph cache stats|gc|clear|verify`: look after the disk cache.
struct CacheCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache",
        abstract: "Inspect and maintain the persistent disk cache of node outputs.",
        discussion: """
            The cache folder is --cache-dir, else $SANAGRAPH_CACHE_DIR, else $XDG_CACHE_HOME/sanagraph, else \
            ~/.cache/sanagraph. Every subcommand is safe while runs use the cache. See docs/cache.md.
            """,
        subcommands: [Stats.self, GC.self, Clear.self, Verify.self])

    /// The folder option of every cache subcommand.
    struct Folder: ParsableArguments {
        @Option(name: .customLong("cache-dir"), help: ArgumentHelp("The disk cache folder.", valueName: "dir"))
        var cacheDirectory: String?

        /// The existing store, or nil when the folder does not exist yet (an empty cache).
        func open(writable: Bool) throws -> DiskCache? {
            guard let dir = DiskCacheSetup.directory(option: cacheDirectory,
                                                     environment: ProcessInfo.processInfo.environment) else {
                Console.error("no cache folder: HOME and XDG_CACHE_HOME are unset; pass --cache-dir")
                throw ExitCode(ErrorCategory.invalidGraph.exitCode)
            }
            var isDir: ObjCBool = false
            if !FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) {
                Console.out("\(dir): no cache yet\n")
                return nil
            }
            guard isDir.boolValue else {
                Console.error("cache folder \(dir): not a folder")
                throw ExitCode(ErrorCategory.io.exitCode)
            }
            do {
                return try DiskCache(directory: dir, writable: writable)
            } catch {
                Console.error("\(error)")
                throw exitStatus(for: error)
            }
        }
    }

    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "stats", abstract: "Entries, total size and age of the disk cache.")

        @OptionGroup var folder: Folder

        func run() throws {
            guard let cache = try folder.open(writable: false) else { return }
            let s = cache.statistics()
            var text = "\(cache.directory)\n"
            text += "  entries: \(s.entries)\n"
            text += "  size: \(formatBytes(s.bytes)) (\(s.bytes) bytes)\n"
            text += "  remembered file hashes: \(s.fileHashes)\n"
            func utc(_ seconds: Double) -> String {
                Timestamp.format(Date(timeIntervalSince1970: seconds), "%Y-%m-%d %H:%M:%S", utc: true)
            }
            if let oldest = s.oldestUse, let newest = s.newestUse {
                text += "  least recently used: \(utc(oldest)) UTC\n"
                text += "  most recently used: \(utc(newest)) UTC\n"
            }
            Console.out(text)
        }
    }

    struct GC: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "gc",
            abstract: "Remove least recently used entries until the cache fits a size.",
            discussion: "Also removes temporary files of interrupted writers older than an hour.")

        @OptionGroup var folder: Folder

        @Option(name: .customLong("max"),
                help: ArgumentHelp("Keep at most this much (e.g. 500M, 2G, 0); default 10G or $SANAGRAPH_CACHE_MAX.",
                                   valueName: "size"))
        var max: ByteSize?

        func run() throws {
            let limit = try CacheOptions.maxBytes(option: max)
            guard let cache = try folder.open(writable: true) else { return }
            let r = cache.collectGarbage(maxBytes: limit)
            Console.out("removed \(r.removedEntries) entries (\(formatBytes(r.removedBytes))); "
                        + "\(r.remainingEntries) entries (\(formatBytes(r.remainingBytes))) remain\n")
        }
    }

    struct Clear: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "clear", abstract: "Remove every entry and remembered file hash.")

        @OptionGroup var folder: Folder

        func run() throws {
            guard let cache = try folder.open(writable: true) else { return }
            let before = cache.statistics()
            do {
                try cache.clear()
            } catch {
                Console.error("\(error)")
                throw exitStatus(for: error)
            }
            Console.out("removed \(before.entries) entries (\(formatBytes(before.bytes)))\n")
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify",
            abstract: "Read every entry and check its checksum; exit 1 when any is bad.",
            discussion: "Bad entries are harmless (runs discard and recompute them); --remove deletes them now.")

        @OptionGroup var folder: Folder

        @Flag(help: "Delete the entries that fail.")
        var remove = false

        func run() throws {
            guard let cache = try folder.open(writable: remove) else { return }
            let report = cache.verify(remove: remove)
            // The bad entries go to stderr (what is wrong with each), the summary to stdout.
            for p in report.problems { Console.err("bad: \(p.path): \(p.reason)\n") }
            let verb = report.removed ? "removed" : "found"
            let summary = "checked \(report.checked) files: "
                + (report.problems.isEmpty ? "all good" : "\(verb) \(report.problems.count) bad")
            Console.out(summary + "\n")
            if !report.problems.isEmpty {
                Console.error("\(report.problems.count) bad cache entr\(report.problems.count == 1 ? "y" : "ies") in "
                              + "\(cache.directory)" + (report.removed ? " (removed)" : "; 'cache verify --remove' deletes them"))
                throw ExitCode(1)
            }
        }
    }
}
