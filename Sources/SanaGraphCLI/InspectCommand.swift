import ArgumentParser
import Foundation
import ImageIO
import SanaGraphKit

/// `sanagraph inspect FILE.png`: prints the provenance SanaGraph stored in a PNG.
/// `sanagraph inspect MODEL_FOLDER`: what a diffusers SANA folder holds and which graph runs it.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Print the SanaGraph metadata of a PNG, or what a SANA model folder is and how to run it.",
        discussion: """
            Examples:
              sanagraph inspect out/text2img_00001.png
              sanagraph inspect out/text2img_00001.png --json | jq .params
              sanagraph inspect out/text2img_00001.png --source > again.yaml
              sanagraph inspect /data/Sana_Sprint_1.6B_1024px_diffusers
                  (family from the transformer config, sizes and dtypes from the safetensors headers, expected
                  memory at fp32/bf16, the shipped graph to use)

            Exit codes: 0 success, 2 the PNG has no SanaGraph metadata, 3 not a readable PNG, 4 not a usable \
            model folder, 6 cannot read the file.
            """)

    @Argument(help: "A PNG written by image.save, or a diffusers-layout SANA model folder.")
    var file: String

    @Flag(help: "Print the metadata as stored (one JSON object).")
    var json = false

    @Flag(help: "Print only the graph file's text.")
    var source = false

    func run() throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory), isDirectory.boolValue {
            do {
                let report = try ModelFolderReport.inspect(path: file)
                Console.out((json ? report.json : report.text) + "\n")
            } catch {
                Console.error("\(error)")
                throw exitStatus(for: error)
            }
            return
        }
        let metadata: Provenance
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
