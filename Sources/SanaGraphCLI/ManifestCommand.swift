import ArgumentParser
import Batch
import Foundation
import GraphRuntime

/// `sanagraph manifest summarize FILE…`: what the batch manifests say.
struct ManifestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "manifest",
        abstract: "Read the manifests batches write (run --manifest).",
        subcommands: [Summarize.self])

    struct Summarize: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "summarize",
            abstract: "Counts, failures, time per item and per node type over one or more manifests.",
            discussion: """
                Give every shard's manifest to see the whole sweep. An item counts once, with its latest line \
                (a failure followed by a success is a success). Lines that don't parse (a torn last line from a \
                writer that was killed) are skipped with a warning. Exit 0 when every item is ok or skipped, 1 \
                when some item's latest line says failed or interrupted, 2 when a file can't be read.
                """)

        @Argument(help: "Manifest files (JSON lines).")
        var files: [String]

        func validate() throws {
            if files.isEmpty { throw ValidationError("give at least one manifest file") }
        }

        func run() throws {
            let contents: ManifestReader.Contents
            do {
                contents = try ManifestReader.read(files)
            } catch let error as ManifestReadError {
                Console.error("\(error)")
                throw ExitCode(error.category.exitCode)
            }
            for warning in contents.warnings { Console.err("warning: \(warning)\n") }
            let summary = ManifestSummary(records: contents.records)
            Console.out(summary.render(files: files, lines: contents.lines, warnings: contents.warnings.count))
            if !(summary.items(.failed) + summary.items(.interrupted)).isEmpty { throw ExitCode(1) }
        }
    }
}
