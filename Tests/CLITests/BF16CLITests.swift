import Foundation
import Safetensors
import Tensors
import Testing
import TestSupport

/// `precision: bf16` end to end: the shipped text2img graph against PyTorch's bf16 picture, the events that say
/// what ran, and the fp32 fallback with its warning. `SANAGRAPH_BF16=on` makes bf16 run on any CPU (natively where
/// the CPU has a bf16 unit, else emulated); `emulate` forces the emulation.
@Suite("bf16 through the CLI")
struct BF16CLITests {
    /// Mean |a − b| in 1/255 units between a [1, 3, H, W] picture in [0, 1] and a uint8 [H, W, 3] one.
    static func meanDifference255(_ image: Tensor, _ hwc: Tensor) -> Float {
        let (h, w) = (image.shape[2], image.shape[3])
        let a = image.scalars, b = hwc.scalars
        var sum: Float = 0
        for c in 0..<3 {
            for i in 0..<(h * w) { sum += abs(a[c * h * w + i] * 255 - b[i * 3 + c]) }
        }
        return sum / Float(3 * h * w)
    }

    static var modes: [String] {
        if case .native = Kernels.selection.bf16 { return ["on", "emulate"] }
        return ["emulate"]
    }

    @Test("text2img with precision bf16 is no less accurate than PyTorch bf16 against the fp32 picture (ratio ≤ 1.5)",
          arguments: modes)
    func textToImage(mode: String) throws {
        let f = try BF16Accuracy.fixture()
        let dir = TestSupport.temporaryDirectory("sanagraph-bf16")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("bf16.png").path
        let r = try PipelineSupport.run(
            graph: "Graphs/text2img.yaml", sets: ["prompt": "a red circle above a blue square on a white background",
                                                  "seed": "0", "precision": "bf16", "output": out],
            extra: ["--json"], directory: TestSupport.repositoryRoot, environment: ["SANAGRAPH_BF16": mode])
        try #require(r.status == 0, "\(r.stderr)")
        let notes = PipelineSupport.events(r.stdout).filter { $0["event"] as? String == "node_note" }
        for node in ["text_encoder", "transformer", "vae"] {
            #expect(notes.contains { $0["node"] as? String == node && ($0["message"] as? String)?.hasPrefix("precision bf16") == true },
                    "\(node): \(notes)")
        }
        let (image, _) = try PipelineSupport.pixels(out, out)
        let fp32 = try f.tensor("text2img.fp32"), torchBF16 = try f.tensor("text2img.bf16")
        let ours = Self.meanDifference255(image, fp32), pytorch = Self.meanDifference255(
            Tensor(shape: [1, 3, 256, 256], values: (0..<3).flatMap { c in (0..<65_536).map { torchBF16.scalars[$0 * 3 + c] / 255 } }), fp32)
        print("text2img bf16 (SANAGRAPH_BF16=\(mode)): mean |Δ| \(ours)/255 vs PyTorch bf16 \(pytorch)/255")
        #expect(ours <= BF16Accuracy.maxRatio * pytorch, "mean |Δ| \(ours)/255 vs PyTorch bf16 \(pytorch)/255")
        #expect(ours > 0, "bf16 must change the picture a little")
    }

    @Test("a bf16 request where bf16 is off runs fp32, says so once per loader, and gives the fp32 result")
    func fallbackWarnsAndRunsFP32() throws {
        let dir = TestSupport.temporaryDirectory("sanagraph-bf16-off")
        defer { try? FileManager.default.removeItem(at: dir) }
        func decode(_ precision: String, _ env: [String: String]) throws -> (CLI.Result, Tensor) {
            let out = dir.appendingPathComponent("\(precision).safetensors").path
            let r = try PipelineSupport.run(
                graph: TestSupport.fixture("BF16/decode.yaml"),
                sets: ["vae": BF16Accuracy.model + "/vae", "input": TestSupport.fixture("BF16/sana_shapes.safetensors"),
                       "precision": precision, "out": out], environment: env)
            guard r.status == 0 else { throw CLIError(r.stderr) }
            return (r, try SafetensorsFile(path: out).tensor("image"))
        }
        let (off, offImage) = try decode("bf16", ["SANAGRAPH_BF16": "off"])
        let warnings = off.stderr.components(separatedBy: "\n").filter { $0.contains("precision bf16 runs as fp32") }
        #expect(warnings.count == 1 && warnings[0].contains("node 'vae'") && warnings[0].contains("SANAGRAPH_BF16=off"),
                "\(off.stderr)")
        let (_, fp32Image) = try decode("fp32", [:])
        #expect(offImage.scalars == fp32Image.scalars)
        let (_, bf16Image) = try decode("bf16", ["SANAGRAPH_BF16": "emulate"])
        #expect(TestSupport.relativeError(bf16Image, fp32Image) > 1e-4)
    }

    @Test("sanagraph info names the CPU, both precisions' kernels, threads, libraries and the cache folder")
    func info() throws {
        let r = try CLI.run(["info", "--threads", "3"])
        try #require(r.status == 0, "\(r.stderr)")
        for label in ["cpu:", "features:", "threads:", "openblas:", "onednn:", "fp32:", "bf16:", "cache:"] {
            #expect(r.stdout.contains(label), "\(label) missing in \(r.stdout)")
        }
        #expect(r.stdout.contains("threads:   3 (--threads)"))
        let generic = try CLI.run(["info", "--json"], environment: ["SANAGRAPH_CPU": "generic"])
        let object = try JSONSerialization.jsonObject(with: Data(generic.stdout.utf8)) as? [String: String]
        #expect(object?["openblas"]?.hasPrefix("core Prescott") == true, "\(generic.stdout)")
        #expect(object?["bf16"]?.contains("SANAGRAPH_CPU=generic") == true)
        #expect(object?["onednn"]?.contains("sse41") == true || object?["onednn"]?.hasPrefix("not used") == true)
        #expect(try CLI.run(["info", "--threads", "0"]).status == 2)
    }
}
