import ArgumentParser
import Batch
import Foundation
import GraphRuntime
import Logging

extension PlanCommand {
    /// `plan` with a sweep (or a manifest): how many items, how many are done, and what the rest should cost
    /// according to an earlier run's manifest. Validates every item and checks output collisions like `run`;
    /// writes nothing.
    func planBatch() throws {
        let registry = try plugins.registry()
        let graph: BatchGraph
        let items: [SweepItem]
        let shard: Shard
        let resolved: (sweep: Sweep, shard: Shard, source: String?)
        do {
            resolved = try sweep.resolve()
            shard = resolved.shard
            graph = try batchGraph(self.graph)
            items = try sweepItems(resolved.sweep, graph: graph, setNames: Set(self.graph.parsedOverrides().keys))
        } catch let error as GraphValidationError {
            for diagnostic in error.diagnostics { Console.err("\(diagnostic)\n") }
            throw exitStatus(for: error)
        } catch {
            Console.error("\(error)")
            throw exitStatus(for: error)
        }

        // Like plain `plan`: the disk cache read-only (for content hashes and keys), nothing written.
        let mode = try cache.mode()
        let (disk, warning) = DiskCacheSetup.open(mode: mode == .off ? .off : .readOnly, directory: cache.directory,
                                                  maxBytes: nil)
        if let warning, mode != .readWrite { Console.err("warning: \(warning)\n") }
        var settings = BatchSettings()
        settings.shard = shard
        let manifestFiles = manifests.flatMap { template -> [String] in
            let own = shard.render(template)
            return siblingManifests(template: template) + (FileManager.default.fileExists(atPath: own) ? [own] : [])
        }
        settings.resumeManifests = Array(Set(manifestFiles)).sorted()
        let runner = BatchRunner(graph: graph, items: items, registry: registry, settings: settings,
                                 stores: disk.map { [$0] } ?? [], cancellation: CancellationToken(),
                                 logger: Logger(label: "sanagraph"), provenance: pngProvenance, events: { _ in })
        let prepared: PreparedBatch
        do {
            prepared = try runner.prepare()
        } catch {
            Console.error("\(error)")
            throw exitStatus(for: error)
        }
        for warning in prepared.warnings { Console.err("warning: \(warning)\n") }

        var shape: [String] = []
        if let rows = resolved.sweep.rows { shape.append("\(rows.path): \(rows.rows.count) rows") }
        for axis in resolved.sweep.axes { shape.append("\(axis.name): \(axis.values.count) value\(axis.values.count == 1 ? "" : "s")") }
        let how = shape.count > 1 ? (resolved.sweep.zip ? "zip of " : "product of ") : ""
        Console.out("\(graph.file): sweep of \(prepared.total) item\(prepared.total == 1 ? "" : "s")"
                    + (shape.isEmpty ? "" : " (\(how)\(shape.joined(separator: ", ")))") + "\n")
        let pending = prepared.pending
        let done = prepared.items.count - pending.count
        let part = shard.count > 1 ? "shard \(shard) (\(resolved.source ?? "--shard")): \(prepared.items.count) items; " : ""
        Console.out("\(part)\(done) done (outputs exist with matching provenance), \(pending.count) to run\n")
        let reasons = pending.compactMap { item -> String? in
            if case .pending(let reason?) = item.completion { return "  item \(item.item.index) (\(item.item.label)): \(reason)" }
            return nil
        }
        for line in reasons.prefix(5) { Console.out(line + "\n") }
        if reasons.count > 5 { Console.out("  … and \(reasons.count - 5) more items whose outputs exist but differ\n") }

        guard !settings.resumeManifests.isEmpty else {
            Console.out("time and memory: no manifest of an earlier run given (--manifest FILE)\n")
            return
        }
        let contents = ManifestReader.readExisting(settings.resumeManifests)
        for warning in contents.warnings { Console.err("warning: \(warning)\n") }
        let summary = ManifestSummary(records: contents.records)
        guard let e = summary.estimate(graphSHA256: prepared.graphSHA256) ?? summary.estimate() else {
            Console.out("time and memory: the manifests have no item that ran (\(settings.resumeManifests.joined(separator: ", ")))\n")
            return
        }
        let sameGraph = summary.estimate(graphSHA256: prepared.graphSHA256) != nil
        var line = "per item (\(e.samples) ran\(sameGraph ? "" : ", another version of the graph")): "
            + "median \(formatDuration(e.medianSeconds)), max \(formatDuration(e.maxSeconds))"
        if let peak = e.peakRSSBytes { line += "; peak memory up to \(formatByteCount(peak))" }
        Console.out(line + "\n")
        // A process pays the model loads once; the median item is one that found its models loaded.
        let loadsPerProcess = e.modelLoads > 0 ? e.modelLoadSeconds / Double(max(1, Set(summary.ran.map { "\($0.host)/\($0.pid)" }).count)) : 0
        let total = Double(pending.count) * e.medianSeconds + (pending.isEmpty ? 0 : loadsPerProcess)
        Console.out("estimate for \(pending.count) item\(pending.count == 1 ? "" : "s"): about \(formatDuration(total))"
                    + (loadsPerProcess > 0 ? " (model loads \(formatDuration(loadsPerProcess)) once, then "
                       + "\(formatDuration(e.medianSeconds)) per item)" : "") + "\n")
    }
}
