import ArgumentParser
import Foundation
import GraphRuntime
import Foundation

/// The `sanagraph` command: a thin shell over GraphRuntime. Each subcommand lives in its own type.

struct SanaGraphCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sanagraph",
        abstract: "Run SANA text-to-image workflows described as YAML node graphs.",
        discussion: """
            Examples:
              sanagraph run Graphs/text2img.yaml --set prompt="a red circle" --set seed=7
              sanagraph validate my-graph.yaml
              sanagraph plan my-graph.yaml
              sanagraph nodes
              sanagraph dot my-graph.yaml | dot -Tpng > graph.png
              sanagraph cache stats
              sanagraph run Graphs/text2img.yaml --sweep seed=0..99 --manifest out/manifest.jsonl
              sanagraph info

            Exit codes: 0 success, 2 invalid graph or params, 3 a node failed, 4 a model/weights file is \
            missing or corrupt, 5 the --lock file is held, 6 input/output error, 130 interrupted; a \
            command-line usage error (unknown option, bad value) exits 2 too; 'cache verify' exits 1 when it \
            finds a bad entry. See docs/cli.md.
            """,
        version: SanaGraphVersion.current,
        subcommands: [
            RunCommand.self, ValidateCommand.self, PlanCommand.self, NodesCommand.self, DescribeCommand.self,
            DotCommand.self, SchemaCommand.self, Inspect.self, ConvertCommand.self, CacheCommand.self,
            ManifestCommand.self, InfoCommand.self,
        ])

    /// ArgumentParser's own entry point, except that usage errors exit 2 (not its 64), like every other
    /// invalid-input error: one code for "what you asked for is malformed", whoever noticed it.
    static func main() {
        // Past a file-size limit (ulimit -f) a write must fail with EFBIG, reported as an I/O error (exit 6), not
        // kill the process with SIGXFSZ.
        signal(SIGXFSZ, SIG_IGN)
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            guard code == .validationFailure else { exit(withError: error) }
            Console.err(fullMessage(for: error) + "\n")
            Foundation.exit(ErrorCategory.invalidGraph.exitCode)
        }
    }
}

/// Entry points for `sanagraph` binaries: the stock one, and one a package of your own builds with extra packs.
public enum SanaGraphCLI {
    /// Runs the command line with the built-in packs plus `extraPacks` (compiled into your binary), then exits.
    public static func main(extraPacks: [any NodePack.Type] = []) -> Never {
        CompiledPacks.extra = extraPacks
        SanaGraphCommand.main()
        exit(0)
    }
}
