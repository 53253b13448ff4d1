import ArgumentParser
import Batch
import Foundation
import GraphRuntime
import ImageIO

/// `--sweep`, `--sweep-file`, `--zip` and `--shard`: which items a batch has and which of them this process takes
/// (shared by `run` and `plan`; docs/cli.md#sweeps). Parsed in the command, not by the argument parser, so a bad
/// value is an invalid-input error (exit 2) naming the problem.
struct SweepOptions: ParsableArguments {
    @Option(name: .customLong("sweep"),
            help: ArgumentHelp("Run the graph once per value (repeatable; several give their cartesian product): "
                               + "seed=0..99, seed=0..99:10, guidance=3.5,4.5 or prompt=@prompts.txt.",
                               valueName: "name=values"))
    var sweeps: [String] = []

    @Option(name: .customLong("sweep-file"),
            help: ArgumentHelp("Param sets, one item each: .yaml (a list of mappings), .csv (a header of names) "
                               + "or .jsonl (one object per line).", valueName: "file"))
    var sweepFile: String?

    @Flag(name: .customLong("zip"), help: ArgumentHelp("Pair the sweeps' values up (the i-th item takes every "
                                                       + "list's i-th value) instead of taking their product."))
    var zip = false

    @Option(name: .customLong("shard"),
            help: ArgumentHelp("Take part INDEX of COUNT (0-based; item k goes to part k mod COUNT), or 'auto' "
                               + "from JOB_COMPLETION_INDEX+SANAGRAPH_SHARD_COUNT or SLURM_ARRAY_TASK_*.",
                               valueName: "i/n|auto"))
    var shard: String?

    /// Whether any sweep option was given.
    var isActive: Bool { !sweeps.isEmpty || sweepFile != nil || shard != nil || zip }

    /// The sweep and this process's shard; prints where an automatic shard came from unless `quiet`.
    func resolve() throws -> (sweep: Sweep, shard: Shard, source: String?) {
        var axes: [SweepAxis] = []
        for argument in sweeps { axes.append(try SweepAxis.parse(argument)) }
        let rows = try sweepFile.map { try SweepFile.load($0) }
        let sweep = Sweep(rows: rows, axes: axes, zip: zip)
        switch shard {
        case nil: return (sweep, .all, nil)
        case "auto"?:
            let (shard, source) = try Shard.fromEnvironment(ProcessInfo.processInfo.environment)
            return (sweep, shard, source)
        case let text?: return (sweep, try Shard.parse(text), nil)
        }
    }
}

/// The graph of a batch: the file's text (or a PNG's recorded graph with `--from`) and the shared overrides.
func batchGraph(_ options: GraphOptions) throws -> BatchGraph {
    let overrides = options.parsedOverrides()
    if let png = options.fromImage {
        let recorded = try PNGMetadata.read(path: png)
        var merged = recorded.params.mapValues(\.description)
        merged.merge(overrides) { _, user in user }
        return BatchGraph(source: recorded.graphSource, file: recorded.graphFile, overrides: merged,
                          nodeDefaults: options.nodeDefaults)
    }
    let path = options.file
    guard let data = FileManager.default.contents(atPath: path) else {
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        let why = !exists ? "no such file" : isDirectory.boolValue ? "it is a directory" : "permission denied"
        throw GraphValidationError([Diagnostic(.error, "cannot read graph file '\(path)': \(why)", at: nil)])
    }
    guard let text = String(data: data, encoding: .utf8) else {
        throw GraphValidationError([Diagnostic(.error, "graph file '\(path)' is not UTF-8 text", at: nil)])
    }
    return BatchGraph(source: text, file: path, overrides: overrides, paramsFiles: options.paramsFiles,
                      nodeDefaults: options.nodeDefaults)
}

/// Every item of the sweep, its names checked against the graph's params.
func sweepItems(_ sweep: Sweep, graph: BatchGraph, setNames: Set<String>) throws -> [SweepItem] {
    let parsed = try GraphLoader.parse(yaml: graph.source, file: graph.file)
    try sweep.check(declared: parsed.paramNames, setNames: setNames)
    return try sweep.items()
}

/// The manifests a shard reads when deciding what is done: its own and, when the template has `{shard}`, the
/// files every other shard count/index would write beside it (`manifest-0.jsonl`, `manifest-1.jsonl`, …).
func siblingManifests(template: String) -> [String] {
    guard template.contains("{shard}") else { return [] }
    let dir = (template as NSString).deletingLastPathComponent
    let pattern = (template as NSString).lastPathComponent
    guard !dir.contains("{shard"),
          let names = try? FileManager.default.contentsOfDirectory(atPath: dir.isEmpty ? "." : dir) else { return [] }
    let parts = pattern.components(separatedBy: "{shard}")
    return names.filter { name in matchesShardPattern(name, parts: parts) }.sorted()
        .map { dir.isEmpty ? $0 : dir + "/" + $0 }
}

/// Whether `name` is `parts` joined by decimal numbers ({shards} counts as a number too).
private func matchesShardPattern(_ name: String, parts: [String]) -> Bool {
    var rest = Substring(name)
    for (i, part) in parts.enumerated() {
        let literal = part.components(separatedBy: "{shards}")
        for (j, piece) in literal.enumerated() {
            guard rest.hasPrefix(piece) else { return false }
            rest = rest.dropFirst(piece.count)
            if j < literal.count - 1 {
                let digits = rest.prefix { $0.isASCII && $0.isNumber }
                guard !digits.isEmpty else { return false }
                rest = rest.dropFirst(digits.count)
            }
        }
        if i < parts.count - 1 {
            let digits = rest.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty else { return false }
            rest = rest.dropFirst(digits.count)
        }
    }
    return rest.isEmpty
}

/// What `image.save`'s PNGs record about their run, for resume.
let pngProvenance: ProvenanceReader = { path in
    guard path.lowercased().hasSuffix(".png"), let m = try? PNGMetadata.read(path: path) else { return nil }
    return OutputProvenance(graphSource: m.graphSource, params: m.params, nodeVersions: m.nodeVersions,
                            fingerprints: m.modelFingerprints, node: m.node)
}
