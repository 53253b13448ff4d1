import Foundation
import Safetensors
import Tensors
import TestSupport

/// Shared by the text-to-image tests: rendering a graph with the built binary and reading PNGs back as pixels.
enum PipelineSupport {
    /// `Graphs/NAME.yaml` in the repository.
    static func graph(_ name: String) -> String {
        TestSupport.repositoryRoot.appendingPathComponent("Graphs/\(name).yaml").path
    }

    /// Runs `sanagraph run GRAPH --no-metadata --set k=v …` (sorted keys, so commands are reproducible).
    static func run(graph: String, sets: [String: String], extra: [String] = [],
                    directory: URL? = nil, environment: [String: String?] = [:]) throws -> CLI.Result {
        // --cache off: every test computes its picture (and writes nothing into the user's cache).
        var args = ["run", graph, "--no-metadata", "--cache", "off"] + extra
        for key in sets.keys.sorted() { args += ["--set", "\(key)=\(sets[key]!)"] }
        return try CLI.run(args, directory: directory, environment: environment)
    }

    /// Both PNGs as [1, 3, H, W] tensors in [0, 1], read by the binary's own `image.load` (exact for 8-bit PNGs).
    static func pixels(_ a: String, _ b: String) throws -> (Tensor, Tensor) {
        let dir = TestSupport.temporaryDirectory("sanagraph-png")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("pair.safetensors").path
        let r = try CLI.run(["run", TestSupport.fixture("Pipeline/png-pair.yaml"), "--no-metadata", "--cache", "off",
                             "--set", "a=\(a)", "--set", "b=\(b)", "--set", "out=\(out)"])
        guard r.status == 0 else { throw CLIError("reading \(a) and \(b) failed: \(r.stderr)") }
        let file = try SafetensorsFile(path: out)
        return (try file.tensor("a"), try file.tensor("b"))
    }

    /// Largest per-channel difference in 1/255 units (infinite when the sizes differ).
    static func maxDifference255(_ a: Tensor, _ b: Tensor) -> Float {
        guard a.shape == b.shape else { return .infinity }
        var worst: Float = 0
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                for i in 0..<pa.count { worst = max(worst, abs(pa[i] - pb[i]) * 255) }
            }
        }
        return worst
    }

    /// Reads a JSON fixture as a dictionary.
    static func json(_ relativePath: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: TestSupport.fixture(relativePath)))
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw CLIError("\(relativePath) is not a JSON object")
        }
        return object
    }

    /// The `--json` event lines of a run as dictionaries.
    static func events(_ stdout: String) -> [[String: Any]] {
        stdout.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }
}
