@testable import Batch
import Foundation
import GraphRuntime
import Logging
import SanaGraphKit
import Synchronization
import Testing
import TestSupport

// A loader, a node that reads the model, and a file writer that names its file in advance: enough to check
// what the runner promises (models kept across items, retries, resume, collisions) without the SANA model.

final class ToyModel: Sendable {}

extension SocketType {
    static let toyModel = SocketType("batchtest.Model", holding: ToyModel.self)
}

/// Loads and write attempts per test key.
final class ToyCounter: Sendable {
    static let shared = ToyCounter()
    private let counts = Mutex([String: Int]())
    func bump(_ key: String) -> Int { counts.withLock { $0[key, default: 0] += 1; return $0[key]! } }
    func count(_ key: String) -> Int { counts.withLock { $0[key] ?? 0 } }
}

struct ToyLoad: Node {
    static let descriptor = NodeDescriptor(
        typeName: "batchtest.load", version: 1, summary: "A model.", outputs: [OutputSpec("model", .toyModel)],
        params: [ParamSpec("key", .string)])
    func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        _ = ToyCounter.shared.bump("load:" + params.string("key"))
        return ["model": Value(.toyModel, ToyModel())]
    }
}

struct ToyUse: Node {
    static let descriptor = NodeDescriptor(
        typeName: "batchtest.use", version: 1, summary: "Reads the model.",
        inputs: [InputSpec("model", .toyModel)], outputs: [OutputSpec("text", .string)],
        params: [ParamSpec("text", .string)])
    func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        ["text": .string("encoded " + params.string("text"))]
    }
}

struct ToyWrite: Node, PlansOutputFiles {
    static let descriptor = NodeDescriptor(
        typeName: "batchtest.write", version: 1, summary: "Writes a text file.",
        inputs: [InputSpec("value", .string)], outputs: [OutputSpec("path", .path)],
        params: [ParamSpec("path", .string), ParamSpec("x", .int), ParamSpec("failures", .int, default: .int(0))],
        hasSideEffects: true, diskCacheable: false)

    /// `{params.NAME}` in the path becomes the graph param's value.
    func plannedOutputFiles(params: ParamValues, run: RunInfo) throws -> [String]? {
        var path = params.string("path")
        for (name, value) in run.params { path = path.replacingOccurrences(of: "{params.\(name)}", with: value.description) }
        return [path]
    }

    func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        let path = try plannedOutputFiles(params: params, run: context.run!)![0]
        // Fails with an I/O error the first `failures` times for this path.
        if ToyCounter.shared.bump("write:" + path) <= params.int("failures") {
            throw NodeError.io(path: path, message: "disk hiccup")
        }
        try "\(try inputs.string("value")) x=\(params.int("x"))\n".write(toFile: path, atomically: true, encoding: .utf8)
        return ["path": .path(path)]
    }
}

enum ToyPack: NodePack {
    static let name = "BatchTest"
    static let nodes: [any Node.Type] = [ToyLoad.self, ToyUse.self, ToyWrite.self]
    static let socketTypes: [SocketType] = [.toyModel]
}

/// Remembers what the runner reported.
final class Recorder: BatchObserver {
    var records: [ManifestRecord] = []
    var warnings: [String] = []
    var onStart: (PreparedItem) -> Void = { _ in }
    func itemStarting(_ item: PreparedItem, position: Int, of count: Int, attempt: Int) { onStart(item) }
    func itemFinished(_ record: ManifestRecord, item: PreparedItem) { records.append(record) }
    func warning(_ message: String) { warnings.append(message) }
}

@Suite struct BatchRunnerTests {
    let dir = TestSupport.temporaryDirectory("sanagraph-batch")
    let key = UUID().uuidString

    var graph: BatchGraph {
        BatchGraph(source: """
            sanagraph: 1
            params:
              x: {type: int, default: 0}
              text: {type: string, default: a}
              out: {type: string, default: "\(dir.path)/{params.x}-{params.text}.txt"}
              fail: {type: int, default: 0}
            nodes:
              model: {type: batchtest.load, params: {key: "\(key)"}}
              use: {type: batchtest.use, inputs: {model: model}, params: {text: "${text}"}}
              write: {type: batchtest.write, inputs: {value: use}, params: {path: "${out}", x: "${x}", failures: "${fail}"}}
            """, file: "toy.yaml")
    }

    func runner(_ sweeps: [String], zip: Bool = false, _ configure: (inout BatchSettings) -> Void = { _ in }) throws -> BatchRunner {
        var settings = BatchSettings()
        settings.modelMemory = 1 << 30
        settings.valueMemory = 1 << 20
        settings.retryDelay = 0
        configure(&settings)
        let items = try Sweep(axes: sweeps.map { try SweepAxis.parse($0) }, zip: zip).items()
        return BatchRunner(graph: graph, items: items, registry: try NodeRegistry(packs: [ToyPack.self]),
                           settings: settings, stores: [], cancellation: CancellationToken(),
                           logger: Logger(label: "test"), provenance: { _ in nil }, events: { _ in })
    }

    @Test func modelsLoadOnceAndEveryItemWritesItsOwnFile() throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try runner(["text=a,b,c", "x=0..1"])
        let batch = try r.prepare()
        #expect(batch.total == 6 && batch.pending.count == 6)
        let recorder = Recorder()
        let outcome = try r.run(batch, observer: recorder)
        #expect(outcome.exitCode == 0 && outcome.counts[.ok] == 6)
        #expect(ToyCounter.shared.count("load:\(key)") == 1)
        #expect(recorder.records.map(\.item) == Array(0..<6))
        #expect(recorder.records.reduce(0) { $0 + $1.modelLoads } == 1)
        #expect(Set(recorder.records.map(\.key)).count == 6)
        for record in recorder.records {
            let output = try #require(record.outputs.first)
            let text = try String(contentsOfFile: output.path, encoding: .utf8)
            #expect(text == "encoded \(record.params["text"]!) x=\(record.params["x"]!)\n")
            #expect(output.sha256 == FileDigest.sha256(text) && output.bytes == text.utf8.count)
            #expect(record.nodeTypes["batchtest.write"]?.runs == 1)
        }
    }

    @Test func aModelNoLaterItemReadsIsReleased() throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        // Only x changes: after the first item the encoded text comes from the value store, the model is unused.
        let seeds = try runner(["x=0..2"])
        let recorder = Recorder()
        var held: [Int] = []
        recorder.onStart = { _ in held.append((seeds.executor.caches[0] as! MemoryCache).keys.count) }
        _ = try seeds.run(try seeds.prepare(), observer: recorder)
        #expect(held == [0, 0, 0])
        // The text changes with every item: the model stays loaded from the first item to the last.
        let texts = try runner(["x=3..5", "text=p,q,r"], zip: true)
        held = []
        recorder.onStart = { _ in held.append((texts.executor.caches[0] as! MemoryCache).keys.count) }
        _ = try texts.run(try texts.prepare(), observer: recorder)
        #expect(held == [0, 1, 1])
        #expect(ToyCounter.shared.count("load:\(key)") == 2)
    }

    @Test func ioFailuresAreRetriedAndOthersCounted() throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        let retried = try runner(["x=0..1", "fail=1"]) { $0.retries = 1 }
        let recorder = Recorder()
        let outcome = try retried.run(try retried.prepare(), observer: recorder)
        #expect(outcome.exitCode == 0)
        #expect(recorder.records.map(\.attempts) == [2, 2])
        #expect(recorder.warnings.count == 2 && recorder.warnings[0].contains("disk hiccup; retrying"))

        let once = try runner(["x=2..3", "fail=1"])
        let failed = try once.run(try once.prepare(), observer: Recorder())
        #expect(failed.counts[.failed] == 2 && failed.exitCode == 6)
        #expect(failed.failures[0].category == "io" && failed.failures[0].error?.contains("disk hiccup") == true)
    }

    @Test func maxFailuresStopsStartingItems() throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try runner(["x=0..3", "fail=0,99,99,0"], zip: true) { $0.maxFailures = 1 }
        let outcome = try r.run(try r.prepare(), observer: Recorder())
        #expect(outcome.counts[.ok] == 1 && outcome.counts[.failed] == 1 && outcome.notStarted == 2)
        #expect(outcome.stoppedAtMaxFailures && outcome.exitCode == 6)
    }

    @Test func rerunSkipsWhatTheManifestVouchesForAndRedoesTheRest() throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        let manifest = dir.appendingPathComponent("m.jsonl").path
        let first = try runner(["x=0..3"]) { $0.manifest = manifest }
        _ = try first.run(try first.prepare(), observer: Recorder())
        // One output changed by hand, one removed: those two run again, the others are done.
        try "edited\n".write(toFile: dir.appendingPathComponent("1-a.txt").path, atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(at: dir.appendingPathComponent("2-a.txt"))
        let second = try runner(["x=0..3"]) { $0.manifest = manifest }
        let batch = try second.prepare()
        #expect(batch.pending.map(\.item.index) == [1, 2])
        if case .pending(let reason?) = batch.pending[0].completion {
            #expect(reason.contains("no manifest line vouches for it"))
        } else {
            Issue.record("item 1 should say why it runs again")
        }
        let recorder = Recorder()
        _ = try second.run(batch, observer: recorder)
        #expect(recorder.records.filter { $0.status == .ok }.map(\.item) == [1, 2])
        // Items the manifest already listed get no second line.
        let lines = try ManifestReader.read([manifest]).records
        #expect(lines.map(\.item) == [0, 1, 2, 3, 1, 2])
        // --force runs everything.
        let forced = try runner(["x=0..3"]) { $0.manifest = manifest; $0.force = true }
        #expect(try forced.prepare().pending.count == 4)
    }

    @Test func collidingOutputsAreRefusedNamingTheItems() throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        // The output path has x and text, not fail: two items per file.
        let r = try runner(["fail=0,1"])
        do {
            _ = try r.prepare()
            Issue.record("colliding outputs accepted")
        } catch {
            let text = "\(error)"
            #expect(text.contains("0-a.txt: item 0 (fail=0), item 1 (fail=1)"), "\(text)")
            #expect((error as? BatchError)?.category == .invalidGraph)
        }
    }

    @Test func invalidItemsAreListedBeforeAnythingRuns() throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try runner(["x=1,a,b"])
        do {
            _ = try r.prepare()
            Issue.record("invalid items accepted")
        } catch {
            let text = "\(error)"
            #expect(text.contains("item 1 (x=a): error: --sweep x=a: param 'x' is an int"), "\(text)")
            #expect(text.contains("item 2 (x=b)"))
        }
        #expect(ToyCounter.shared.count("load:\(key)") == 0)
    }
}
