import SanaGraphKit
import Foundation
import Logging
import Safetensors
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A persistent, content-addressed store of node outputs shared by every process that uses the same folder.
///
/// Layout (docs/cache.md):
/// ```
/// <dir>/CACHEDIR.TAG                       marks the folder as a cache for backup tools
/// <dir>/entries/<k0k1>/<key>.safetensors   one blob per node key (see `CacheBlob`)
/// <dir>/files/<h0h1>/<sha256 of a fast file fingerprint>   remembered content hashes of model files
/// ```
/// Safety: a blob is written to a temporary file in its final folder, fsync'ed, renamed into place and the folder
/// fsync'ed (`AtomicFile`), so a reader sees a whole blob or none; readers take no lock; several processes writing
/// the same key write identical bytes and the last rename wins. A blob that fails its checks on read (truncated,
/// flipped bits, wrong key) is reported through `CacheEntryInfo.warn`, deleted (read-write mode) and treated as
/// a miss, so the node is recomputed.
///
/// LRU: a hit sets the blob's mtime to now (read-write mode); eviction removes the oldest mtimes first. The store
/// keeps at most `maxBytes` of blobs: a write that takes it over the cap evicts least recently used entries.
public final class DiskCache: NodeCacheStore {
    public let name = "disk"
    /// The cache folder.
    public let directory: String
    /// False for `--cache ro`: hits are served, nothing is written, touched or deleted.
    public let writable: Bool
    /// Size cap for blobs (nil: unbounded).
    public let maxBytes: Int?
    /// Content hashes for model files, remembered under `files/`.
    public let hasher: FileContentHasher

    private let logger: Logger
    /// Bytes of blobs, known after the first write's scan; updated by this process's writes and evictions.
    private let knownBytes = Mutex<Int?>(nil)

    var entriesDirectory: String { directory + "/entries" }
    var filesDirectory: String { directory + "/files" }

    /// Opens (and in read-write mode creates) the store at `directory`.
    /// Throws `DiskCacheError.unusable` when a read-write store can't be created or written.
    public init(directory: String, writable: Bool = true, maxBytes: Int? = nil,
                logger: Logger = Logger(label: "sanagraph.cache")) throws(DiskCacheError) {
        self.directory = directory
        self.writable = writable
        self.maxBytes = maxBytes
        self.logger = logger
        self.hasher = FileContentHasher(memoDirectory: directory + "/files", writesMemos: writable)
        if writable { try Self.prepare(directory) }
    }

    /// Creates the folders and checks that files can be created in them.
    private static func prepare(_ directory: String) throws(DiskCacheError) {
        for dir in [directory, directory + "/entries", directory + "/files"] {
            do {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            } catch {
                throw .unusable(path: directory, reason: "cannot create '\(dir)': \(Self.reason(error))")
            }
        }
        let tag = directory + "/CACHEDIR.TAG"
        if !FileManager.default.fileExists(atPath: tag) {
            do {
                try AtomicFile.write(to: tag) { sink throws(SafetensorsError) in
                    try sink.write(Array(("Signature: 8a477f597d28d172789f06886806bc55\n"
                                          + "# This folder is a SanaGraph cache (docs/cache.md); "
                                          + "'sanagraph cache clear' empties it.\n").utf8))
                }
            } catch {
                throw .unusable(path: directory, reason: "cannot write files there: \(error)")
            }
        }
        guard access(directory + "/entries", W_OK) == 0 else {
            throw .unusable(path: directory, reason: "the entries folder is not writable")
        }
    }

    private static func reason(_ error: any Error) -> String {
        let ns = error as NSError
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        return ns.localizedDescription
    }

    /// The blob path of `key`.
    public func path(for key: CacheKey) -> String {
        "\(entriesDirectory)/\(key.hex.prefix(2))/\(key.hex).safetensors"
    }

    // MARK: NodeCacheStore

    /// Side-effect nodes, nodes marked `diskCacheable: false` and nodes with a model output are never stored.
    public func accepts(_ info: CacheEntryInfo) -> Bool {
        let d = info.descriptor
        return !d.hasSideEffects && d.diskCacheable && d.outputs.allSatisfy { $0.type.isDiskCacheable }
    }

    /// Content hashes instead of path/size/mtime/inode for files nodes read.
    public func canonicalFingerprint(_ fingerprint: String) -> String { hasher.canonical(fingerprint) }

    public func contains(_ key: CacheKey) -> Bool {
        var st = stat()
        return stat(path(for: key), &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }

    public func lookup(_ key: CacheKey, info: CacheEntryInfo) -> NodeOutputs? {
        guard accepts(info) else { return nil }
        let file = path(for: key)
        guard contains(key) else { return nil }
        do {
            let outputs = try CacheBlob.decode(path: file, key: key, info: info.descriptor)
            // LRU clock: one utimensat per hit, no index to lock.
            if writable { _ = utimensat(AT_FDCWD, file, nil, 0) }
            return outputs
        } catch {
            // A blob that vanished between stat and open (another process's gc) is a plain miss.
            if case SafetensorsError.unreadable(_, let reason)? = error as? SafetensorsError, reason == "no such file" {
                return nil
            }
            let action = writable ? "discarded; the node runs again" : "ignored (read-only cache); the node runs again"
            info.warn(name, "corrupt cache entry \(file): \(error); \(action)")
            if writable { unlink(file) }
            return nil
        }
    }

    public func store(_ key: CacheKey, outputs: NodeOutputs, info: CacheEntryInfo) {
        guard writable, accepts(info), CacheBlob.canEncode(outputs) else { return }
        let d = info.descriptor
        guard let blob = CacheBlob.encode(outputs, key: key, node: "\(d.typeName)@\(d.version)") else { return }
        let size = blob.tensors.values.reduce(0) { $0 + $1.byteCount }
        if let maxBytes, size > maxBytes {
            logger.info("cache: '\(info.nodeID)' output (\(size) bytes) is larger than the cache cap; not stored")
            return
        }
        let file = path(for: key)
        // Another process already stored this key: the bytes would be identical (same key, same node version).
        if contains(key) {
            _ = utimensat(AT_FDCWD, file, nil, 0)
            return
        }
        let sub = "\(entriesDirectory)/\(key.hex.prefix(2))"
        do {
            if mkdir(sub, 0o755) != 0 && errno != EEXIST {
                throw DiskCacheError.unusable(path: sub, reason: String(cString: strerror(errno)))
            }
            try SafetensorsWriter.write(blob.tensors, metadata: blob.metadata, to: file)
        } catch {
            info.warn(name, "could not write cache entry for node '\(info.nodeID)': \(error); continuing without it")
            return
        }
        enforceCap(added: fileSize(file) ?? size)
    }

    /// Evicts least recently used blobs when this process's writes took the store over `maxBytes`.
    private func enforceCap(added: Int) {
        guard let maxBytes else { return }
        let over = knownBytes.withLock { known -> Bool in
            // The first scan already sees the new blob.
            let total = known.map { $0 + added } ?? scanBytes()
            known = total
            return total > maxBytes
        }
        guard over else { return }
        let result = collectGarbage(maxBytes: maxBytes)
        knownBytes.withLock { $0 = result.remainingBytes }
    }

    private func scanBytes() -> Int { listEntries().reduce(0) { $0 + $1.bytes } }

    private func fileSize(_ path: String) -> Int? {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : nil
    }

    // MARK: Maintenance

    /// One stored blob.
    public struct Entry: Sendable {
        public var key: String
        public var path: String
        public var bytes: Int
        /// Last use (mtime), seconds since 1970.
        public var lastUse: Double
    }

    /// Every blob, oldest use first (ties by key).
    public func listEntries() -> [Entry] {
        var entries: [Entry] = []
        for sub in (try? FileManager.default.contentsOfDirectory(atPath: entriesDirectory)) ?? [] {
            let dir = "\(entriesDirectory)/\(sub)"
            for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
            where name.hasSuffix(".safetensors") && !name.hasPrefix(".") {
                let path = "\(dir)/\(name)"
                var st = stat()
                guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
                entries.append(Entry(key: String(name.dropLast(".safetensors".count)), path: path,
                                     bytes: Int(st.st_size), lastUse: Self.mtime(st)))
            }
        }
        return entries.sorted { ($0.lastUse, $0.key) < ($1.lastUse, $1.key) }
    }

    private static func mtime(_ st: stat) -> Double {
        Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) * 1e-9
    }

    /// What `cache stats` prints.
    public struct Statistics: Sendable {
        public var entries: Int
        public var bytes: Int
        /// Remembered model-file content hashes.
        public var fileHashes: Int
        public var oldestUse: Double?
        public var newestUse: Double?
    }

    public func statistics() -> Statistics {
        let entries = listEntries()
        var memos = 0
        for sub in (try? FileManager.default.contentsOfDirectory(atPath: filesDirectory)) ?? [] {
            memos += ((try? FileManager.default.contentsOfDirectory(atPath: "\(filesDirectory)/\(sub)")) ?? [])
                .filter { !$0.hasPrefix(".") }.count
        }
        return Statistics(entries: entries.count, bytes: entries.reduce(0) { $0 + $1.bytes }, fileHashes: memos,
                          oldestUse: entries.first?.lastUse, newestUse: entries.last?.lastUse)
    }

    /// What a garbage collection did.
    public struct CollectionResult: Sendable {
        public var removedEntries: Int
        public var removedBytes: Int
        public var remainingEntries: Int
        public var remainingBytes: Int
        /// Temporary files of interrupted writers (older than an hour) that were removed.
        public var removedTemporaryFiles: Int
    }

    /// Removes least recently used blobs until at most `maxBytes` remain, and leftovers of crashed writers.
    /// Safe while other processes use the store: a reader that already opened a blob keeps it; one that comes
    /// later sees a miss.
    @discardableResult
    public func collectGarbage(maxBytes: Int) -> CollectionResult {
        var entries = listEntries()
        var total = entries.reduce(0) { $0 + $1.bytes }
        var removed = 0, removedBytes = 0
        while total > maxBytes, !entries.isEmpty {
            let victim = entries.removeFirst()
            if unlink(victim.path) == 0 || errno == ENOENT {
                removed += 1
                removedBytes += victim.bytes
            }
            total -= victim.bytes
        }
        let temps = removeStaleTemporaryFiles(olderThan: 3600)
        if removed > 0 { logger.info("cache: evicted \(removed) entries (\(removedBytes) bytes)") }
        return CollectionResult(removedEntries: removed, removedBytes: removedBytes, remainingEntries: entries.count,
                                remainingBytes: total, removedTemporaryFiles: temps)
    }

    /// Temporary files (`.<name>.tmp-<pid>-<random>`) left by writers that died before their rename.
    private func removeStaleTemporaryFiles(olderThan seconds: Double) -> Int {
        let now = Date().timeIntervalSince1970
        var count = 0
        for root in [entriesDirectory, filesDirectory] {
            for sub in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] {
                let dir = "\(root)/\(sub)"
                for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
                where name.hasPrefix(".") && name.contains(".tmp-") {
                    var st = stat()
                    let path = "\(dir)/\(name)"
                    if stat(path, &st) == 0, now - Self.mtime(st) > seconds, unlink(path) == 0 { count += 1 }
                }
            }
        }
        return count
    }

    /// Removes every entry and remembered file hash (the folder itself stays).
    public func clear() throws(DiskCacheError) {
        for root in [entriesDirectory, filesDirectory] {
            for sub in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] {
                do {
                    try FileManager.default.removeItem(atPath: "\(root)/\(sub)")
                } catch {
                    throw .unusable(path: "\(root)/\(sub)", reason: "cannot remove: \(Self.reason(error))")
                }
            }
        }
        knownBytes.withLock { $0 = 0 }
    }

    /// One entry that failed verification.
    public struct Problem: Sendable {
        public var path: String
        public var reason: String
    }

    /// The result of `verify`.
    public struct VerifyReport: Sendable {
        public var checked: Int
        public var problems: [Problem]
        /// Whether the bad entries were deleted.
        public var removed: Bool
    }

    /// Reads every blob fully and checks its header, key (against its file name) and checksum, and every
    /// remembered file hash's format. With `remove`, bad entries are deleted.
    public func verify(remove: Bool = false) -> VerifyReport {
        var problems: [Problem] = []
        let entries = listEntries()
        for entry in entries {
            guard entry.key.count == 64, entry.key.allSatisfy(\.isHexDigit) else {
                problems.append(Problem(path: entry.path, reason: "file name is not a cache key"))
                continue
            }
            do {
                try CacheBlob.verify(path: entry.path, key: CacheKey(hex: entry.key))
            } catch {
                problems.append(Problem(path: entry.path, reason: "\(error)"))
            }
        }
        var checked = entries.count
        for sub in (try? FileManager.default.contentsOfDirectory(atPath: filesDirectory)) ?? [] {
            let dir = "\(filesDirectory)/\(sub)"
            for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where !name.hasPrefix(".") {
                checked += 1
                let path = "\(dir)/\(name)"
                let text = FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) } ?? ""
                let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
                let ok = lines.count >= 2 && lines[0].count == 64 && lines[0].allSatisfy(\.isHexDigit)
                    && FileContentHasher.sha256Hex(Array(lines[1].utf8)) == name
                if !ok { problems.append(Problem(path: path, reason: "malformed remembered file hash")) }
            }
        }
        if remove && writable { for p in problems { unlink(p.path) } }
        return VerifyReport(checked: checked, problems: problems, removed: remove && writable)
    }
}

/// A disk cache that can't be used.
public enum DiskCacheError: CategorizedError, Equatable {
    /// The folder can't be created, read or written.
    case unusable(path: String, reason: String)

    public var category: ErrorCategory { .io }

    public var description: String {
        switch self {
        case .unusable(let path, let reason): return "cache folder \(path): \(reason)"
        }
    }
}

/// How a run uses the disk cache (`--cache`).
public enum DiskCacheMode: String, Sendable, CaseIterable {
    /// Read hits and write new entries (the default).
    case readWrite = "rw"
    /// Read hits, never write, touch or delete anything.
    case readOnly = "ro"
    /// No disk cache.
    case off
}

/// Resolves the cache folder and opens the store the way the CLI does (`--cache-dir`, `--cache`, `--cache-max`,
/// `SANAGRAPH_CACHE_DIR`, `SANAGRAPH_CACHE`, `SANAGRAPH_CACHE_MAX`, `XDG_CACHE_HOME`, `HOME`).
public enum DiskCacheSetup {
    /// Default size cap: 10 GiB.
    public static let defaultMaxBytes = 10 << 30

    /// `--cache-dir`, else `$SANAGRAPH_CACHE_DIR`, else `$XDG_CACHE_HOME/sanagraph`, else `~/.cache/sanagraph`.
    public static func directory(option: String?, environment: [String: String]) -> String? {
        if let option, !option.isEmpty { return option }
        if let dir = environment["SANAGRAPH_CACHE_DIR"], !dir.isEmpty { return dir }
        if let xdg = environment["XDG_CACHE_HOME"], xdg.hasPrefix("/") { return xdg + "/sanagraph" }
        if let home = environment["HOME"], !home.isEmpty { return home + "/.cache/sanagraph" }
        return nil
    }

    /// A store for a run, or nil with the reason to print as a warning. A read-write folder that can't be
    /// written falls back to read-only when it exists and is readable; otherwise the run goes on without a
    /// disk cache (the cache only saves time; it never decides whether a run works).
    public static func open(mode: DiskCacheMode, directory: String?, maxBytes: Int?,
                            logger: Logger = Logger(label: "sanagraph.cache")) -> (DiskCache?, warning: String?) {
        guard mode != .off else { return (nil, nil) }
        guard let directory else {
            return (nil, "no cache folder (HOME and XDG_CACHE_HOME are unset; use --cache-dir); running without the disk cache")
        }
        if mode == .readOnly {
            var isDir: ObjCBool = false
            if !FileManager.default.fileExists(atPath: directory, isDirectory: &isDir) || !isDir.boolValue {
                return (nil, "cache folder \(directory) does not exist; running without the disk cache")
            }
            return ((try? DiskCache(directory: directory, writable: false, maxBytes: maxBytes, logger: logger)), nil)
        }
        do {
            return (try DiskCache(directory: directory, writable: true, maxBytes: maxBytes, logger: logger), nil)
        } catch {
            if access(directory + "/entries", R_OK | X_OK) == 0,
               let store = try? DiskCache(directory: directory, writable: false, maxBytes: maxBytes, logger: logger) {
                return (store, "\(error); using the cache read-only")
            }
            return (nil, "\(error); running without the disk cache")
        }
    }
}
