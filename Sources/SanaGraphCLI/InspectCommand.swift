import ArgumentParser
import ImageIO

/// `sanagraph inspect FILE.png`: prints the provenance SanaGraph stored in a PNG.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Print the SanaGraph metadata of a PNG: graph, params, node versions, model fingerprints.",
        discussion: """
            Examples:
              sanagraph inspect out/text2img_00001.png
              sanagraph inspect out/text2img_00001.png --json | jq .params
              sanagraph inspect out/text2img_00001.png --source > again.yaml

            Exit codes: 0 success, 2 the PNG has no SanaGraph metadata, 3 not a readable PNG, 6 cannot read the file.
            """)

    @Argument(help: "A PNG written by image.save.")
    var file: String

    @Flag(help: "Print the metadata as stored (one JSON object).")
    var json = false

    @Flag(help: "Print only the graph file's text.")
    var source = false

    func run() throws {
        let metadata: PNGMetadata
        do {
            metadata = try PNGMetadata.read(path: file)
        } catch {
            Console.error("\(error)")
            throw exitStatus(for: error)
        }
        if json {
            Console.out(metadata.json + "\n")
        } else if source {
            Console.out(metadata.graphSource.hasSuffix("\n") ? metadata.graphSource : metadata.graphSource + "\n")
        } else {
            Console.out(metadata.report + "\n")
        }
    }
}
