import Foundation
import SanaGraphKit

#if canImport(Glibc)
import Glibc
#endif

/// One line of a batch manifest: what happened to one item (docs/cluster.md#manifest lists the fields).
public struct ManifestRecord: Codable, Sendable, Equatable {
    public static let formatVersion = 1

    public enum Status: String, Codable, Sendable, CaseIterable {
        /// The item ran and wrote its outputs.
        case ok
        /// The item failed (after its retries); `error` and `exit_code` say why.
        case failed
        /// The item's outputs already existed with matching provenance; nothing ran.
        case skipped
        /// SIGINT/SIGTERM stopped the item; the batch stopped too.
        case interrupted
    }

    /// A file an output node wrote.
    public struct Output: Codable, Sendable, Equatable {
        public var node: String
        public var path: String
        public var sha256: String
        public var bytes: Int

        public init(node: String, path: String, sha256: String, bytes: Int) {
            self.node = node
            self.path = path
            self.sha256 = sha256
            self.bytes = bytes
        }
    }

    /// Time and cache use of the nodes of one type during the item.
    public struct NodeTypeStats: Codable, Sendable, Equatable {
        /// Nodes of this type that ran.
        public var runs = 0
        /// Nodes served from a cache.
        public var cached = 0
        /// Nodes neither run nor read (everything reading them came from cache).
        public var skipped = 0
        /// Seconds spent, cached ones included.
        public var seconds = 0.0

        public init(runs: Int = 0, cached: Int = 0, skipped: Int = 0, seconds: Double = 0) {
            self.runs = runs
            self.cached = cached
            self.skipped = skipped
            self.seconds = seconds
        }
    }

    public var format = ManifestRecord.formatVersion
    /// The item's 0-based index in the whole sweep.
    public var item: Int
    /// How many items the whole sweep has.
    public var items: Int
    /// `index/count` of the process that wrote the line.
    public var shard: String
    /// The item's swept params as text (as given).
    public var params: [String: String]
    /// SHA-256 over what determines the item's outputs: graph text, every resolved graph param, the output
    /// nodes' cache keys (which cover node versions and model files). Resume matches items by it.
    public var key: String
    /// The graph file as given.
    public var graph: String
    /// SHA-256 of the graph file's text.
    public var graphSHA256: String
    public var status: Status
    /// The exit code the item's outcome maps to (0 for ok and skipped).
    public var exitCode: Int
    public var error: String?
    /// The error's category (`node_failed`, `model_file`, `io`, `interrupted`, ...).
    public var category: String?
    /// How many times the item was tried (retries of I/O errors included); 0 when skipped.
    public var attempts: Int
    /// When the item started (ISO 8601, UTC).
    public var started: String
    /// Wall-clock seconds of the item (its last attempt).
    public var seconds: Double
    public var outputs: [Output]
    /// By node type name.
    public var nodeTypes: [String: NodeTypeStats]
    /// Hits by cache store (`memory`, `disk`).
    public var cacheHits: [String: Int]
    public var nodesRun: Int
    public var nodesCached: Int
    public var nodesSkipped: Int
    /// Loader nodes (nodes producing a model) that ran, i.e. model loads.
    public var modelLoads: Int
    /// Seconds those loads took.
    public var modelLoadSeconds: Double
    /// The process's peak resident memory during the item (Linux VmHWM, reset at the item's start), if known.
    public var peakRSSBytes: Int?
    public var host: String
    public var pid: Int

    public init(item: Int, items: Int, shard: String, params: [String: String], key: String, graph: String,
                graphSHA256: String, status: Status, exitCode: Int = 0, error: String? = nil, category: String? = nil,
                attempts: Int = 1, started: String = "", seconds: Double = 0, outputs: [Output] = [],
                nodeTypes: [String: NodeTypeStats] = [:], cacheHits: [String: Int] = [:], nodesRun: Int = 0,
                nodesCached: Int = 0, nodesSkipped: Int = 0, modelLoads: Int = 0, modelLoadSeconds: Double = 0, peakRSSBytes: Int? = nil,
                host: String = ManifestRecord.hostName, pid: Int = Int(getpid())) {
        self.item = item
        self.items = items
        self.shard = shard
        self.params = params
        self.key = key
        self.graph = graph
        self.graphSHA256 = graphSHA256
        self.status = status
        self.exitCode = exitCode
        self.error = error
        self.category = category
        self.attempts = attempts
        self.started = started
        self.seconds = seconds
        self.outputs = outputs
        self.nodeTypes = nodeTypes
        self.cacheHits = cacheHits
        self.nodesRun = nodesRun
        self.nodesCached = nodesCached
        self.nodesSkipped = nodesSkipped
        self.modelLoads = modelLoads
        self.modelLoadSeconds = modelLoadSeconds
        self.peakRSSBytes = peakRSSBytes
        self.host = host
        self.pid = pid
    }

    enum CodingKeys: String, CodingKey {
        case format, item, items, shard, params, key, graph, status, error, category, attempts, started, seconds
        case outputs, host, pid
        case graphSHA256 = "graph_sha256", exitCode = "exit_code", nodeTypes = "node_types"
        case cacheHits = "cache_hits", nodesRun = "nodes_run", nodesCached = "nodes_cached"
        case nodesSkipped = "nodes_skipped", modelLoads = "model_loads", modelLoadSeconds = "model_load_seconds", peakRSSBytes = "peak_rss_bytes"
    }

    /// Lenient: only `item`, `key` and `status` are required, so lines from other versions still count.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        format = try c.decodeIfPresent(Int.self, forKey: .format) ?? Self.formatVersion
        item = try c.decode(Int.self, forKey: .item)
        key = try c.decode(String.self, forKey: .key)
        status = try c.decode(Status.self, forKey: .status)
        items = try c.decodeIfPresent(Int.self, forKey: .items) ?? 0
        shard = try c.decodeIfPresent(String.self, forKey: .shard) ?? ""
        params = try c.decodeIfPresent([String: String].self, forKey: .params) ?? [:]
        graph = try c.decodeIfPresent(String.self, forKey: .graph) ?? ""
        graphSHA256 = try c.decodeIfPresent(String.self, forKey: .graphSHA256) ?? ""
        exitCode = try c.decodeIfPresent(Int.self, forKey: .exitCode) ?? 0
        error = try c.decodeIfPresent(String.self, forKey: .error)
        category = try c.decodeIfPresent(String.self, forKey: .category)
        attempts = try c.decodeIfPresent(Int.self, forKey: .attempts) ?? 0
        started = try c.decodeIfPresent(String.self, forKey: .started) ?? ""
        seconds = try c.decodeIfPresent(Double.self, forKey: .seconds) ?? 0
        outputs = try c.decodeIfPresent([Output].self, forKey: .outputs) ?? []
        nodeTypes = try c.decodeIfPresent([String: NodeTypeStats].self, forKey: .nodeTypes) ?? [:]
        cacheHits = try c.decodeIfPresent([String: Int].self, forKey: .cacheHits) ?? [:]
        nodesRun = try c.decodeIfPresent(Int.self, forKey: .nodesRun) ?? 0
        nodesCached = try c.decodeIfPresent(Int.self, forKey: .nodesCached) ?? 0
        nodesSkipped = try c.decodeIfPresent(Int.self, forKey: .nodesSkipped) ?? 0
        modelLoads = try c.decodeIfPresent(Int.self, forKey: .modelLoads) ?? 0
        modelLoadSeconds = try c.decodeIfPresent(Double.self, forKey: .modelLoadSeconds) ?? 0
        peakRSSBytes = try c.decodeIfPresent(Int.self, forKey: .peakRSSBytes)
        host = try c.decodeIfPresent(String.self, forKey: .host) ?? ""
        pid = try c.decodeIfPresent(Int.self, forKey: .pid) ?? 0
    }

    /// The record as one line of JSON (keys sorted, no newline inside: strings escape theirs).
    public var jsonLine: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding strings, numbers and dictionaries of them cannot fail.
        let data = (try? encoder.encode(self)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// The item's params as `name=value` text, sorted by name (for messages).
    public var paramsLabel: String {
        params.isEmpty ? "(defaults)" : params.keys.sorted().map { "\($0)=\(params[$0]!)" }.joined(separator: " ")
    }

    public static let hostName: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }()
}

/// Appends records to a manifest file so that a crash never leaves a line that breaks readers.
///
/// Each record is one `write(2)` of a whole line on a descriptor opened with `O_APPEND`, then `fsync`. On a local
/// file system concurrent appenders never interleave inside a line. If an earlier writer died mid-line (a torn
/// line without its newline), the next append starts with a newline, so the fragment stays a line of its own
/// that readers skip. Several hosts appending to one file over NFS is not safe (NFS emulates `O_APPEND`): give
/// each shard its own manifest (`--manifest out/manifest-{shard}.jsonl`).
public final class ManifestWriter: @unchecked Sendable {
    public let path: String
    private let fd: Int32

    /// Opens (creating it and its folder if needed) the manifest at `path`.
    public init(path: String) throws {
        self.path = path
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        let existed = FileManager.default.fileExists(atPath: path)
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw BatchError.manifestUnwritable(path: path, reason: String(cString: strerror(errno))) }
        if !existed { syncDirectory(dir.isEmpty ? "." : dir) }
    }

    deinit { close(fd) }

    /// Appends `record` as one line and flushes it to disk.
    public func append(_ record: ManifestRecord) throws {
        var line = record.jsonLine + "\n"
        if endsTorn() { line = "\n" + line }
        let bytes = Array(line.utf8)
        let written = bytes.withUnsafeBytes { buffer -> Int in
            while true {
                let n = write(fd, buffer.baseAddress, buffer.count)
                if n < 0 && errno == EINTR { continue }
                return n
            }
        }
        guard written == bytes.count else {
            // A short write (full disk) leaves a torn line; the next append (or reader) copes with it.
            let reason = written < 0 ? String(cString: strerror(errno)) : "only \(written) of \(bytes.count) bytes written"
            throw BatchError.manifestUnwritable(path: path, reason: reason)
        }
        guard fsync(fd) == 0 || errno == EINVAL else {
            throw BatchError.manifestUnwritable(path: path, reason: "fsync: " + String(cString: strerror(errno)))
        }
    }

    /// Whether the file is non-empty and does not end with a newline.
    private func endsTorn() -> Bool {
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_size > 0 else { return false }
        let reader = open(path, O_RDONLY | O_CLOEXEC)
        guard reader >= 0 else { return false }
        defer { close(reader) }
        var last: UInt8 = 0
        return pread(reader, &last, 1, off_t(st.st_size - 1)) == 1 && last != UInt8(ascii: "\n")
    }

    private func syncDirectory(_ dir: String) {
        let d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard d >= 0 else { return }
        _ = fsync(d)
        close(d)
    }
}

/// Reads manifests: every line that parses, in order, with a warning for each one that doesn't (a torn last line
/// from a writer that was killed, or a line that is not a record).
public enum ManifestReader {
    public struct Contents: Sendable {
        /// Records in file order (files in the order given).
        public var records: [ManifestRecord] = []
        /// `FILE:LINE: ...` for every skipped line.
        public var warnings: [String] = []
        /// Non-empty lines read.
        public var lines = 0

        public init() {}
    }

    /// Reads every file; a missing or unreadable one throws `ManifestReadError`.
    public static func read(_ paths: [String]) throws -> Contents {
        var contents = Contents()
        for path in paths {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ManifestReadError(path: path, reason: FileManager.default.fileExists(atPath: path)
                                        ? "can't be read" : "no such file")
            }
            parse(data, path: path, into: &contents)
        }
        return contents
    }

    /// Reads the files that exist, ignoring missing ones (resume: an earlier run may not have written one).
    public static func readExisting(_ paths: [String]) -> Contents {
        var contents = Contents()
        for path in paths {
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            parse(data, path: path, into: &contents)
        }
        return contents
    }

    static func parse(_ data: Data, path: String, into contents: inout Contents) {
        let bytes = [UInt8](data)
        let endsWithNewline = bytes.last == UInt8(ascii: "\n")
        let lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        let decoder = JSONDecoder()
        for (i, line) in lines.enumerated() {
            if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") }) { continue }
            contents.lines += 1
            if let record = try? decoder.decode(ManifestRecord.self, from: Data(line)) {
                contents.records.append(record)
                continue
            }
            let isLast = i == lines.count - 1
            contents.warnings.append(isLast && !endsWithNewline
                ? "\(path):\(i + 1): skipped a torn last line (its writer was stopped mid-write); the item counts as not done"
                : "\(path):\(i + 1): skipped a line that is not a manifest record")
        }
    }
}

/// A manifest named on the command line that can't be read (invalid input, exit 2, like a missing --params file).
public struct ManifestReadError: CategorizedError {
    public var path: String
    public var reason: String
    public var category: ErrorCategory { .invalidGraph }
    public var description: String { "cannot read manifest '\(path)': \(reason)" }
}
