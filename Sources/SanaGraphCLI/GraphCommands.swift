import ArgumentParser
import Foundation
import GraphRuntime

/// `sanagraph validate FILE`: every diagnostic, nothing run.
struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a graph without running it; print every error as FILE:LINE:COL.",
        discussion: "Exit 0 when valid (warnings don't fail), 2 when there is any error.")

    @OptionGroup var graph: GraphOptions

    @OptionGroup var plugins: PluginOptions

    func run() throws {
        let validated = try loadGraph(graph, registry: try plugins.registry())
        let plan = Planner.plan(validated)
        let warnings = validated.warnings.count
        Console.out("\(graph.file): ok (\(validated.nodes.count) nodes, \(plan.steps.count) to run, "
                    + "\(plan.pruned.count) pruned, \(warnings) warning\(warnings == 1 ? "" : "s"))\n")
    }
}

/// `sanagraph plan FILE`: the order, cache status and releases, without loading weights.
struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show what a run would do: order, cache hits, when values are released. Loads no weights.",
        discussion: """
            Node fingerprints are computed (they may read file metadata or hash small files), so the cache keys \
            shown are the ones a run would use. The cache column says 'run' for nodes that would run, 'always' \
            for output nodes, 'cached (disk)' for nodes the disk cache would serve, or 'skip' for nodes nothing \
            needs because everything reading them is cached. Nothing is written to the cache.
            """)

    @OptionGroup var graph: GraphOptions

    @OptionGroup var cache: CacheOptions

    @OptionGroup var plugins: PluginOptions

    func run() throws {
        let validated = try loadGraph(graph, registry: try plugins.registry())
        let plan = Planner.plan(validated)
        // The in-memory store is empty in a new process; the disk store is opened read-only (plan writes nothing).
        let steps: [PlannedStep]
        do {
            let mode = try cache.mode()
            let (disk, warning) = DiskCacheSetup.open(mode: mode == .off ? .off : .readOnly,
                                                      directory: cache.directory, maxBytes: nil)
            if let warning, mode != .readWrite { Console.err("warning: \(warning)\n") }
            let executor = Executor(caches: [MemoryCache(budget: 0)] + (disk.map { [$0] } ?? []))
            steps = try executor.preview(validated, plan: plan)
        } catch {
            Console.error("\(error)")
            throw exitStatus(for: error)
        }
        let pruned = plan.pruned.isEmpty ? "" : ", \(plan.pruned.count) pruned"
        Console.out("\(validated.file): \(steps.count) step\(steps.count == 1 ? "" : "s")\(pruned)\n")
        let rows = steps.enumerated().map { i, s -> [String] in
            let cache = s.hasSideEffects ? "always" : (s.cachedIn.map { "cached (\($0))" } ?? (s.skipped ? "skip" : "run"))
            let releases = s.step.releaseAfter.map(\.description).joined(separator: ", ")
            return ["\(i + 1)", s.step.node, s.typeName, cache, s.key.short, releases.isEmpty ? "-" : releases]
        }
        Console.out(table(header: ["#", "node", "type", "cache", "key", "releases after"], rows: rows))
        if !plan.pruned.isEmpty {
            Console.out("pruned (no output needs them): \(plan.pruned.joined(separator: ", "))\n")
        }
    }
}

/// `sanagraph nodes`: one line per node type.
struct NodesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nodes",
        abstract: "List every node type with its pack and a one-line summary, then the packs and where they come from.",
        discussion: "Use 'sanagraph describe NODE' for sockets and params.")

    @OptionGroup var plugins: PluginOptions

    func run() throws {
        let registry = try plugins.registry()
        let rows = registry.descriptors.map { d in
            [d.typeName, registry.pack(of: d.typeName) ?? "", d.hasSideEffects ? "output" : "", d.summary]
        }
        if rows.isEmpty {
            Console.out("no node types are registered\n")
            return
        }
        Console.out(table(header: nil, rows: rows))
        Console.out("\npacks:\n")
        Console.out(table(header: nil, rows: registry.packs.map { ["  " + $0.name, $0.origin.description] }))
    }
}

/// `sanagraph describe NODE`: sockets, params, defaults, ranges and docs.
struct DescribeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "describe",
        abstract: "Show a node type's inputs, outputs and params with types, defaults, ranges and docs.",
        discussion: "Exit 2 when the node type is unknown (with suggestions).")

    @Argument(help: "A node type name, as listed by 'sanagraph nodes'.")
    var node: String

    @OptionGroup var plugins: PluginOptions

    func run() throws {
        let registry = try plugins.registry()
        guard let type = registry.nodeType(named: node) else {
            let hint = Suggestions.didYouMean(node, in: registry.typeNames)
            Console.error("unknown node type '\(node)'\(hint); 'sanagraph nodes' lists them all")
            throw ExitCode(ErrorCategory.invalidGraph.exitCode)
        }
        Console.out(Self.render(type.descriptor, pack: registry.packInfo(of: node)))
    }

    static func render(_ d: NodeDescriptor, pack: NodeRegistry.PackInfo?) -> String {
        var out = "\(d.typeName) (version \(d.version)\(pack.map { ", pack \($0.name), \($0.origin)" } ?? ""))\n"
        out += "  \(d.summary)\n"
        if d.hasSideEffects { out += "  output node: always runs, never cached\n" }
        if !d.diskCacheable && !d.hasSideEffects { out += "  not stored in the disk cache\n" }
        out += "\ninputs:\n"
        if d.inputs.isEmpty { out += "  (none)\n" }
        for input in d.inputs {
            let types = input.accepts.map(\.description).joined(separator: " | ")
            out += "  \(input.name): \(types)\(input.optional ? " (optional)" : "")\(doc(input.doc))\n"
        }
        out += "\noutputs:\n"
        if d.outputs.isEmpty { out += "  (none)\n" }
        for output in d.outputs { out += "  \(output.name): \(output.type)\(doc(output.doc))\n" }
        out += "\nparams:\n"
        if d.params.isEmpty { out += "  (none)\n" }
        for p in d.params {
            var line = "  \(p.name): \(p.type)"
            if let value = p.defaultValue {
                line += " = " + (value.isStringLike ? JSONObjectWriter.quote(value.description) : value.description)
            } else {
                line += " (required)"
            }
            switch (p.min, p.max) {
            case let (lo?, hi?): line += ", range \(number(lo))...\(number(hi))"
            case let (lo?, nil): line += ", at least \(number(lo))"
            case let (nil, hi?): line += ", at most \(number(hi))"
            case (nil, nil): break
            }
            out += line + doc(p.doc) + "\n"
        }
        return out
    }

    private static func doc(_ text: String) -> String { text.isEmpty ? "" : " — \(text)" }

    private static func number(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v)
    }
}

extension ParamValue {
    fileprivate var isStringLike: Bool {
        if case .string = self { return true }
        return false
    }
}

/// `sanagraph dot FILE`: GraphViz.
struct DotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dot",
        abstract: "Print the graph in GraphViz DOT form (pipe into 'dot -Tpng').",
        discussion: "Pruned nodes are drawn dimmed.")

    @OptionGroup var graph: GraphOptions

    @OptionGroup var plugins: PluginOptions

    func run() throws {
        let validated = try loadGraph(graph, registry: try plugins.registry())
        Console.out(DotRenderer.render(validated, plan: Planner.plan(validated)))
    }
}

/// `sanagraph schema`: JSON Schema of graph files for editors.
struct SchemaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema",
        abstract: "Print a JSON Schema of graph files, generated from the registered node types.",
        discussion: """
            For YAML language servers: save it (sanagraph schema > sanagraph.schema.json) and add \
            '# yaml-language-server: $schema=sanagraph.schema.json' at the top of a graph.
            """)

    @OptionGroup var plugins: PluginOptions

    func run() throws {
        let schema = GraphSchema.jsonSchema(registry: try plugins.registry())
        Console.out(schema.hasSuffix("\n") ? schema : schema + "\n")
    }
}

/// Left-aligned columns separated by two spaces.
func table(header: [String]?, rows: [[String]]) -> String {
    let all = (header.map { [$0] } ?? []) + rows
    guard let columns = all.map(\.count).max() else { return "" }
    var widths = [Int](repeating: 0, count: columns)
    for row in all { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
    return all.map { row in
        var line = row.enumerated().map { i, cell in
            i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
        }.joined(separator: "  ")
        while line.hasSuffix(" ") { line.removeLast() }
        return line
    }.joined(separator: "\n") + "\n"
}
