import DiffusionModels
import Foundation
import GraphRuntime
import Safetensors
import Synchronization
import Tensors
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

// The persistent disk cache (#9): blobs, keys with content hashes, corruption, LRU cap, read-only mode, and the
// executor skipping loaders whose consumers are cached. A "new process" is a new Executor with an empty memory
// cache and a new DiskCache on the same folder.

/// A stand-in for a loaded model: never written to disk.
final class FakeUpscaler: UpscaleModel {
    let scale: Int
    init(scale: Int) { self.scale = scale }
    var residentBytes: Int { 64 }
    func upscale(_ image: Tensor, tileSize: Int, overlap: Int, context: RunContext) throws -> Tensor { image }
}

/// `dc.model`: "loads" a model from `path` (its first byte is the scale); fingerprints the file like real loaders.
struct FakeModelLoadNode: Node {
    static let descriptor = NodeDescriptor(
        typeName: "dc.model", version: 1, summary: "Loads a fake model.",
        outputs: [OutputSpec("model", .upscaleModel)],
        params: [ParamSpec("path", .path), ParamSpec("key", .string, default: .string(""))])
    init() {}
    func fingerprint(params: ParamValues) throws -> String? { try FileFingerprint.fast(params.string("path")) }
    func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        TestRecorder.shared.recordRun(key: params.string("key"), nodeID: context.nodeID)
        guard let data = FileManager.default.contents(atPath: params.string("path")) else {
            throw NodeError.modelFile(path: params.string("path"), message: "unreadable")
        }
        return ["model": .upscaler(FakeUpscaler(scale: Int(data.first ?? 1)))]
    }
}

/// `dc.apply`: image = tensor × model scale, plus a conditioning built from it (every tensor kind in one entry).
struct FakeApplyNode: Node {
    static let descriptor = NodeDescriptor(
        typeName: "dc.apply", version: 1, summary: "Applies a fake model.",
        inputs: [InputSpec("model", .upscaleModel), InputSpec("tensor", .tensor)],
        outputs: [OutputSpec("image", .image), OutputSpec("cond", .conditioning), OutputSpec("label", .string)],
        params: [ParamSpec("key", .string, default: .string(""))])
    init() {}
    func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        TestRecorder.shared.recordRun(key: params.string("key"), nodeID: context.nodeID)
        let t = try inputs.tensor("tensor")
        let s = Float(try inputs.upscaler("model").scale)
        let image = Tensor(shape: t.shape, values: t.scalars.map { $0 * s + 0.1 })
        let mask = Tensor(shape: [1, t.count], values: (0..<t.count).map { $0 % 2 == 0 ? 1 : 0 })
        return ["image": .image(image), "cond": .conditioning(Conditioning(embeddings: image, mask: mask)),
                "label": .string("x\(Int(s)) ✓")]
    }
}

private func write(_ bytes: [UInt8], to path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

private func setMTime(_ path: String, seconds: Int) {
    var times = [timespec(tv_sec: seconds, tv_nsec: 0), timespec(tv_sec: seconds, tv_nsec: 0)]
    _ = utimensat(AT_FDCWD, path, &times, 0)
}

private func bitsEqual(_ a: Tensor, _ b: Tensor) -> Bool {
    a.shape == b.shape && zip(a.scalars, b.scalars).allSatisfy { $0.bitPattern == $1.bitPattern }
}

/// A test folder with a model file, and the graph  m → a ← t,  a.image → s → scale → out.
private struct Fixture {
    let dir: URL
    let cacheDir: String
    let modelPath: String
    let key = ExecTest.key()

    init() throws {
        dir = TestSupport.temporaryDirectory("sanagraph-diskcache")
        cacheDir = dir.appendingPathComponent("cache").path
        modelPath = dir.appendingPathComponent("model.bin").path
        try write([3, 1, 2, 3], to: modelPath)
    }

    func graph(factor: Double = 2) -> ValidatedGraph {
        ExecTest.graph([
            NodeSpec("m", FakeModelLoadNode.self, params: ["path": .string(modelPath), "key": .string(key)]),
            NodeSpec("t", MakeTensorNode.self, params: ["width": .int(8), "height": .int(2), "step": .float(0.25),
                                                        "key": .string(key)]),
            NodeSpec("a", FakeApplyNode.self, params: ["key": .string(key)], inputs: ["model": "m", "tensor": "t.tensor"]),
            NodeSpec("s", TensorSumNode.self, params: ["key": .string(key)], inputs: ["tensor": "a.image"]),
            NodeSpec("scale", ScaleNode.self, params: ["factor": .float(factor), "key": .string(key)],
                     inputs: ["x": "s"]),
            NodeSpec("out", SinkNode.self, params: ["key": .string(key)], inputs: ["value": "scale", "extra": "a.image"]),
        ])
    }

    /// One "process": fresh memory cache, fresh disk store on the same folder.
    @discardableResult
    func run(_ graph: ValidatedGraph, writable: Bool = true, maxBytes: Int? = nil) throws -> (EventLog, RunSummary) {
        let log = EventLog()
        let disk = try DiskCache(directory: cacheDir, writable: writable, maxBytes: maxBytes)
        let summary = try Executor(caches: [MemoryCache(budget: 0), disk], events: log.handler)
            .run(graph, plan: ExecTest.plan(graph))
        return (log, summary)
    }

    func keys(_ graph: ValidatedGraph) throws -> [String: CacheKey] {
        let disk = try DiskCache(directory: cacheDir, writable: false)
        return try Executor(caches: [disk]).cacheKeys(for: graph, plan: ExecTest.plan(graph))
    }

    func blob(_ node: String, _ graph: ValidatedGraph) throws -> String {
        try DiskCache(directory: cacheDir, writable: false).path(for: try keys(graph)[node]!)
    }

    /// What the sink received last (the scaled sum and the image).
    func received() -> (Double, Tensor)? {
        let entries = TestRecorder.shared.entries(key: key)
        guard entries.count >= 2, let v = entries[entries.count - 2].value.payload(as: Double.self),
              let t = entries[entries.count - 1].value.payload(as: Tensor.self) else { return nil }
        return (v, t)
    }

    func cleanup() { try? FileManager.default.removeItem(at: dir) }
}

@Suite struct DiskCacheTests {
    @Test func everyStorableValueKindRoundTripsBitExactly() throws {
        let dir = TestSupport.temporaryDirectory("sanagraph-diskcache")
        defer { try? FileManager.default.removeItem(at: dir) }
        let cache = try DiskCache(directory: dir.path)
        let t = Tensor(shape: [2, 3], values: [1, -0.0, .pi, 1e-30, -7.5, Float.greatestFiniteMagnitude])
        let outputs: NodeOutputs = [
            "t": .tensor(t), "l": .latent(Tensor(shape: [1, 2, 1, 1], values: [0.5, -0.5])), "i": .image(t),
            "c": .conditioning(Conditioning(embeddings: t, mask: Tensor(shape: [1, 2], values: [1, 0]))),
            "n": .int(-42), "f": .float(0.1), "b": .bool(true), "s": .string("héllo\n\"x\""), "p": .path("/a/b"),
        ]
        let descriptor = NodeDescriptor(
            typeName: "x.all", version: 3, summary: "",
            outputs: [OutputSpec("t", .tensor), OutputSpec("l", .latent), OutputSpec("i", .image),
                      OutputSpec("c", .conditioning), OutputSpec("n", .int), OutputSpec("f", .float),
                      OutputSpec("b", .bool), OutputSpec("s", .string), OutputSpec("p", .path)])
        let info = CacheEntryInfo(nodeID: "all", descriptor: descriptor)
        let key = CacheKey(hex: String(repeating: "ab", count: 32))
        cache.store(key, outputs: outputs, info: info)
        #expect(cache.contains(key))
        // A new store on the same folder (another process) reads the same values.
        let back = try #require(try DiskCache(directory: dir.path, writable: false).lookup(key, info: info))
        guard let t2 = back["t"]?.payload(as: Tensor.self), let l2 = back["l"]?.payload(as: Tensor.self), let i2 = back["i"]?.payload(as: Tensor.self),
              let c2 = back["c"]?.payload(as: Conditioning.self), back["n"]?.payload(as: Int.self) == -42, let f = back["f"]?.payload(as: Double.self),
              back["b"]?.payload(as: Bool.self) == true, back["s"]?.payload(as: String.self) == "héllo\n\"x\"",
              back["p"]?.payload(as: String.self) == "/a/b", back["l"]?.type == .latent, back["i"]?.type == .image,
              back["p"]?.type == .path
        else {
            Issue.record("wrong values: \(back)")
            return
        }
        #expect(bitsEqual(t2, t) && bitsEqual(i2, t) && l2.shape == [1, 2, 1, 1] && l2.scalars == [0.5, -0.5])
        #expect(bitsEqual(c2.embeddings, t) && c2.mask.scalars == [1, 0] && f.bitPattern == 0.1.bitPattern)
        // The blob is an ordinary safetensors file that other tools can read.
        let file = try SafetensorsFile(path: cache.path(for: key))
        #expect(Set(file.names) == ["t", "l", "i", "c.embeddings", "c.mask"])
        #expect(file.metadata["sanagraph.key"] == key.hex && file.metadata["sanagraph.node"] == "x.all@3")
        #expect(cache.verify().problems.isEmpty)
    }

    @Test func newProcessServesUpstreamFromDiskAndNeverLoadsTheModel() throws {
        let f = try Fixture()
        defer { f.cleanup() }
        let (_, first) = try f.run(f.graph(factor: 2))
        #expect(first.nodesRun == 6 && first.nodesCached == 0)
        let cold = try #require(f.received())

        // Only a downstream param changes: everything upstream comes from disk; the model loader is skipped.
        let (log, second) = try f.run(f.graph(factor: 3))
        #expect(log.finished == ["t": true, "a": true, "s": true, "scale": false, "out": false])
        #expect(log.trace.contains("node_skipped:m") && !log.trace.contains("node_started:m"))
        #expect(second.cachedNodes == ["t": "disk", "a": "disk", "s": "disk"])
        #expect(second.nodesSkipped == 1 && second.nodesRun == 2)
        #expect(TestRecorder.shared.runs(key: f.key) == ["m", "t", "a", "s", "scale", "out", "scale", "out"])
        let warm = try #require(f.received())
        #expect(warm.0 == cold.0 / 2 * 3)
        #expect(bitsEqual(warm.1, cold.1))

        // The model was never written: one entry per storable node (t, a, s, and scale for factors 2 and 3).
        let disk = try DiskCache(directory: f.cacheDir)
        #expect(disk.statistics().entries == 5)
        #expect(!disk.contains(try f.keys(f.graph())["m"]!))
        #expect(disk.verify().problems.isEmpty)
    }

    @Test func touchedModelFileStillHitsButChangedContentMisses() throws {
        let f = try Fixture()
        defer { f.cleanup() }
        try f.run(f.graph())
        let keysBefore = try f.keys(f.graph())
        setMTime(f.modelPath, seconds: 1_000_000) // same bytes, new mtime: a new fast fingerprint
        #expect(try f.keys(f.graph())["a"] == keysBefore["a"])
        let (log, _) = try f.run(f.graph())
        #expect(log.finished["a"] == true && log.trace.contains("node_skipped:m"))
        // The content hash was remembered for the new fast fingerprint too.
        #expect(try DiskCache(directory: f.cacheDir).statistics().fileHashes == 2)

        try write([4, 1, 2, 3], to: f.modelPath) // different bytes: the model's consumers recompute
        #expect(try f.keys(f.graph())["a"] != keysBefore["a"])
        let (log2, _) = try f.run(f.graph())
        #expect(log2.finished["a"] == false && log2.finished["t"] == true)
        #expect(TestRecorder.shared.runs(key: f.key).suffix(5) == ["m", "a", "s", "scale", "out"])
    }

    @Test(arguments: ["flip-data", "flip-header", "truncate", "empty", "wrong-key", "garbage"])
    func corruptEntryIsDiscardedWithAWarningAndRecomputed(damage: String) throws {
        let f = try Fixture()
        defer { f.cleanup() }
        try f.run(f.graph())
        let cold = try #require(f.received())
        let path = try f.blob("a", f.graph())
        var bytes = [UInt8](try #require(FileManager.default.contents(atPath: path)))
        let headerLength = Int(bytes[0]) | Int(bytes[1]) << 8
        switch damage {
        case "flip-data": bytes[bytes.count - 5] ^= 0x40
        case "flip-header":
            // [2,8] -> [8,2]: valid JSON, valid safetensors (same byte count), wrong tensor layout. Only the
            // checksum, which covers shapes, can catch this.
            let header = String(decoding: bytes[8..<(8 + headerLength)], as: UTF8.self)
            let at = try #require(header.range(of: "\"shape\":[2,8]"))
            let offset = 8 + header.utf8.distance(from: header.startIndex, to: at.lowerBound) + "\"shape\":[".utf8.count
            bytes[offset] = UInt8(ascii: "8")
            bytes[offset + 2] = UInt8(ascii: "2")
        case "truncate": bytes.removeLast(bytes.count / 3)
        case "empty": bytes = []
        case "wrong-key":
            // A valid blob of another key copied over this one.
            let other = try f.blob("t", f.graph())
            bytes = [UInt8](try #require(FileManager.default.contents(atPath: other)))
        default: bytes = Array("this is not a safetensors file at all".utf8)
        }
        try write(bytes, to: path)

        let (log, summary) = try f.run(f.graph())
        let warnings = log.all.compactMap { e -> String? in
            if case .cacheWarning(let node, let store, let message) = e, node == "a", store == "disk" { return message }
            return nil
        }
        #expect(warnings.count == 1, "\(log.trace)")
        #expect(warnings.first?.contains(path) == true)
        #expect(log.finished["a"] == false && summary.ok)
        // `a` was expected from cache, so `m` had been skipped: it is loaded after all, and the result is right.
        #expect(TestRecorder.shared.runs(key: f.key).suffix(3) == ["m", "a", "out"])
        let warm = try #require(f.received())
        #expect(warm.0 == cold.0 && bitsEqual(warm.1, cold.1))
        // The bad blob was replaced by a good one.
        #expect(try DiskCache(directory: f.cacheDir).verify().problems.isEmpty)
    }

    @Test func verifyFindsEveryBadEntryAndRemoveDeletesThem() throws {
        let f = try Fixture()
        defer { f.cleanup() }
        try f.run(f.graph())
        let a = try f.blob("a", f.graph()), s = try f.blob("s", f.graph())
        var bytes = [UInt8](try #require(FileManager.default.contents(atPath: a)))
        bytes[bytes.count - 1] ^= 1
        try write(bytes, to: a)
        try write(Array((try #require(FileManager.default.contents(atPath: s))).prefix(20)), to: s)
        let cache = try DiskCache(directory: f.cacheDir)
        let report = cache.verify()
        #expect(Set(report.problems.map(\.path)) == [a, s])
        #expect(report.problems.first { $0.path == a }?.reason.contains("checksum") == true)
        #expect(cache.verify(remove: true).removed)
        #expect(cache.verify().problems.isEmpty && cache.statistics().entries == 2)
    }

    @Test func missingBlobIsAPlainMissAndTheNodeRunsAgain() throws {
        let f = try Fixture()
        defer { f.cleanup() }
        try f.run(f.graph())
        let cold = try #require(f.received())
        try FileManager.default.removeItem(atPath: try f.blob("a", f.graph()))
        try FileManager.default.removeItem(atPath: try f.blob("s", f.graph()))
        let (log, _) = try f.run(f.graph())
        // `s` is not needed: `scale`, its only reader, is still cached.
        #expect(log.finished == ["m": false, "t": true, "a": false, "scale": true, "out": false])
        #expect(log.trace.contains("node_skipped:s"))
        #expect(!log.all.contains { if case .cacheWarning = $0 { return true } else { return false } })
        let warm = try #require(f.received())
        #expect(warm.0 == cold.0 && bitsEqual(warm.1, cold.1))
    }

    @Test func sizeCapEvictsLeastRecentlyUsedEntries() throws {
        let dir = TestSupport.temporaryDirectory("sanagraph-diskcache")
        defer { try? FileManager.default.removeItem(at: dir) }
        let info = CacheEntryInfo(nodeID: "n", descriptor: MakeTensorNode.descriptor)
        func outputs(_ v: Float) -> NodeOutputs {
            ["tensor": .tensor(Tensor(repeating: v, shape: [256])), "count": .int(256)]
        }
        func key(_ c: Character) -> CacheKey { CacheKey(hex: String(repeating: c, count: 64)) }
        let probe = try DiskCache(directory: dir.path)
        probe.store(key("0"), outputs: outputs(0), info: info)
        let entrySize = probe.statistics().bytes
        try probe.clear()

        // Room for two entries and a half.
        let cache = try DiskCache(directory: dir.path, maxBytes: entrySize * 5 / 2)
        cache.store(key("a"), outputs: outputs(1), info: info)
        setMTime(cache.path(for: key("a")), seconds: 1_000)
        cache.store(key("b"), outputs: outputs(2), info: info)
        setMTime(cache.path(for: key("b")), seconds: 2_000)
        // A hit makes `a` the most recently used, so `b` goes when `c` arrives.
        #expect(cache.lookup(key("a"), info: info) != nil)
        cache.store(key("c"), outputs: outputs(3), info: info)
        #expect(cache.contains(key("a")) && !cache.contains(key("b")) && cache.contains(key("c")))
        #expect(cache.statistics().bytes <= entrySize * 5 / 2)

        // `gc --max` removes oldest first down to the size asked for.
        setMTime(cache.path(for: key("a")), seconds: 3_000)
        setMTime(cache.path(for: key("c")), seconds: 4_000)
        let result = cache.collectGarbage(maxBytes: entrySize)
        #expect(result.removedEntries == 1 && result.remainingEntries == 1)
        #expect(!cache.contains(key("a")) && cache.contains(key("c")))
        #expect(cache.collectGarbage(maxBytes: 0).remainingBytes == 0 && cache.statistics().entries == 0)

        // An entry larger than the whole cap is not written at all.
        let tiny = try DiskCache(directory: dir.path, maxBytes: entrySize / 2)
        tiny.store(key("d"), outputs: outputs(4), info: info)
        #expect(!tiny.contains(key("d")))
    }

    @Test func readOnlyStoreServesHitsButNeverWritesTouchesOrDeletes() throws {
        let f = try Fixture()
        defer { f.cleanup() }
        // Empty read-only folder: the run works and writes nothing.
        try FileManager.default.createDirectory(atPath: f.cacheDir, withIntermediateDirectories: true)
        let (log0, _) = try f.run(f.graph(), writable: false)
        #expect(log0.finished.values.allSatisfy { !$0 })
        #expect(try FileManager.default.contentsOfDirectory(atPath: f.cacheDir).isEmpty)

        try f.run(f.graph())
        let a = try f.blob("a", f.graph())
        setMTime(a, seconds: 5_000)
        let (log, _) = try f.run(f.graph(factor: 5), writable: false)
        #expect(log.finished["a"] == true && log.finished["scale"] == false)
        var st = stat()
        #expect(stat(a, &st) == 0 && st.st_mtim.tv_sec == 5_000) // no LRU touch
        let entries = try DiskCache(directory: f.cacheDir).statistics().entries
        #expect(entries == 4) // the new `scale` result was not written

        // A corrupt blob is ignored, not deleted.
        var bytes = [UInt8](try #require(FileManager.default.contents(atPath: a)))
        bytes[bytes.count - 2] ^= 0xff
        try write(bytes, to: a)
        let (log2, summary) = try f.run(f.graph(), writable: false)
        #expect(summary.ok && log2.finished["a"] == false)
        #expect(FileManager.default.contents(atPath: a).map { [UInt8]($0) } == bytes)
    }

    @Test func unusableFolderGivesAWarningAndNoStore() throws {
        let dir = TestSupport.temporaryDirectory("sanagraph-diskcache")
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("file").path
        try write([1], to: file)
        let (store, warning) = DiskCacheSetup.open(mode: .readWrite, directory: file + "/cache", maxBytes: nil)
        #expect(store == nil)
        #expect(warning?.contains(file) == true && warning?.contains("without the disk cache") == true)
        #expect(throws: DiskCacheError.self) { try DiskCache(directory: file) }
        let (ro, roWarning) = DiskCacheSetup.open(mode: .readOnly, directory: dir.appendingPathComponent("none").path,
                                                  maxBytes: nil)
        #expect(ro == nil && roWarning?.contains("does not exist") == true)
        #expect(DiskCacheSetup.open(mode: .off, directory: dir.path, maxBytes: nil).0 == nil)

        // A folder that can still be read but not prepared for writing is used read-only. (Tests run as root,
        // so a plain chmod would not stop writes; a file where the `files` folder belongs does.)
        let broken = dir.appendingPathComponent("broken").path
        try FileManager.default.createDirectory(atPath: broken + "/entries", withIntermediateDirectories: true)
        try write([0], to: broken + "/files")
        let (fallback, fallbackWarning) = DiskCacheSetup.open(mode: .readWrite, directory: broken, maxBytes: nil)
        #expect(fallback != nil && fallback?.writable == false)
        #expect(fallbackWarning?.contains("using the cache read-only") == true)
    }

    @Test func defaultFolderFollowsTheEnvironment() {
        #expect(DiskCacheSetup.directory(option: "/x", environment: ["SANAGRAPH_CACHE_DIR": "/y"]) == "/x")
        #expect(DiskCacheSetup.directory(option: nil, environment: ["SANAGRAPH_CACHE_DIR": "/y",
                                                                    "XDG_CACHE_HOME": "/z"]) == "/y")
        #expect(DiskCacheSetup.directory(option: nil, environment: ["XDG_CACHE_HOME": "/z", "HOME": "/h"])
                == "/z/sanagraph")
        // A relative XDG_CACHE_HOME is invalid per the XDG spec and ignored.
        #expect(DiskCacheSetup.directory(option: nil, environment: ["XDG_CACHE_HOME": "rel", "HOME": "/h"])
                == "/h/.cache/sanagraph")
        #expect(DiskCacheSetup.directory(option: nil, environment: [:]) == nil)
    }

    @Test func concurrentWritersAndReadersOfOneKeyNeverSeeAPartialEntry() async throws {
        let dir = TestSupport.temporaryDirectory("sanagraph-diskcache")
        defer { try? FileManager.default.removeItem(at: dir) }
        let info = CacheEntryInfo(nodeID: "n", descriptor: MakeTensorNode.descriptor)
        let tensor = Tensor(shape: [64, 64], values: (0..<4096).map { Float($0) * 0.5 })
        let key = CacheKey(hex: String(repeating: "c", count: 64))
        let path = dir.path
        // Each worker counts the values it read back that were not exactly the stored tensor.
        let bad = await withTaskGroup(of: Int.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    guard let cache = try? DiskCache(directory: path) else { return 1 }
                    var wrong = 0
                    for _ in 0..<10 {
                        if worker % 2 == 0 {
                            cache.store(key, outputs: ["tensor": .tensor(tensor), "count": .int(4096)], info: info)
                        } else if let out = cache.lookup(key, info: info) {
                            guard let t = out["tensor"]?.payload(as: Tensor.self), bitsEqual(t, tensor) else {
                                wrong += 1
                                continue
                            }
                        }
                    }
                    return wrong
                }
            }
            return await group.reduce(0, +)
        }
        #expect(bad == 0)
        let cache = try DiskCache(directory: dir.path)
        #expect(cache.statistics().entries == 1 && cache.verify().problems.isEmpty)
        // No temporary files left behind.
        let sub = dir.path + "/entries/cc"
        #expect(try FileManager.default.contentsOfDirectory(atPath: sub) == [key.hex + ".safetensors"])
    }

    @Test func contentHasherReplacesOnlyFastFingerprintLines() throws {
        let dir = TestSupport.temporaryDirectory("sanagraph-diskcache")
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = dir.appendingPathComponent("a.bin").path, b = dir.appendingPathComponent("b.bin").path
        try write(Array("same bytes".utf8), to: a)
        try write(Array("same bytes".utf8), to: b)
        let hasher = FileContentHasher(memoDirectory: dir.appendingPathComponent("memo").path, writesMemos: true)
        let fa = try FileFingerprint.fast(a), fb = try FileFingerprint.fast(b)
        let ca = hasher.canonical("scheduler_config:12ab\n" + fa)
        #expect(ca.hasPrefix("scheduler_config:12ab\ncontent-sha256:"))
        #expect(!ca.contains(a))
        // Same bytes under another name: same content line.
        #expect(hasher.canonical(fb) == hasher.canonical(fa))
        // "same bytes" SHA-256.
        #expect(ca.hasSuffix("content-sha256:\(FileContentHasherTestVector.sameBytes)|size=10"))
        // A stale fast fingerprint (file changed since) passes through unchanged.
        try write(Array("other".utf8), to: a)
        #expect(hasher.canonical(fa) == fa)
    }
}

enum FileContentHasherTestVector {
    /// `printf 'same bytes' | sha256sum`
    static let sameBytes = "58100dc8fc06562ce3e578231dc948e083520ee49c4b4ee5a5a28bb4b4003feb"
}
