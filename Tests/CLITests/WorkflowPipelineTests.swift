import Foundation
import Tensors
import Testing
import TestSupport

/// One reference picture of tools/reference/flow_img2img_inpaint.py (Tests/Fixtures/Pipeline/workflows/cases.json).
struct WorkflowCase: Sendable, CustomTestStringConvertible {
    var id: String
    var graph: String
    var sets: [String: String]

    var testDescription: String { id }

    static let folder = "Pipeline/workflows"

    static let all: [WorkflowCase] = {
        guard let object = try? PipelineSupport.json("\(folder)/cases.json"),
              let cases = object["cases"] as? [[String: Any]] else { return [] }
        return cases.compactMap { c in
            guard let id = c["id"] as? String, let graph = c["graph"] as? String else { return nil }
            var sets: [String: String] = ["models": TestSupport.fixture("Pipeline/tiny-sana")]
            for key in ["prompt", "negative"] { sets[key] = c[key] as? String ?? "" }
            for key in ["seed", "steps", "width", "height"] { sets[key] = String(c[key] as? Int ?? -1) }
            for key in ["strength", "guidance"] { sets[key] = String(c[key] as? Double ?? -1) }
            sets["image"] = TestSupport.fixture("\(folder)/\(c["image"] as? String ?? "")")
            if graph == "inpaint" {
                sets["mask"] = TestSupport.fixture("\(folder)/\(c["mask"] as? String ?? "")")
                sets["feather"] = String(c["feather"] as? Double ?? -1)
                sets["invert"] = String(c["invert"] as? Bool ?? false)
            }
            return WorkflowCase(id: id, graph: graph, sets: sets)
        }
    }()
}

/// Graphs/img2img.yaml and Graphs/inpaint.yaml: against diffusers' flow-matching img2img/inpaint convention on the
/// tiny random SANA pipeline, and on the shipped model (what the mask keeps and what it changes).
@Suite struct WorkflowPipelineTests {
    @Test("The reference cases cover img2img at several strengths (with and without guidance) and inpainting with a hard, a feathered and an inverted mask")
    func casesArePresent() {
        let cases = WorkflowCase.all
        #expect(Set(cases.filter { $0.graph == "img2img" }.map { $0.sets["strength"] ?? "" }).count >= 3)
        #expect(cases.contains { $0.graph == "img2img" && $0.sets["guidance"] == "1.0" })
        #expect(cases.contains { $0.graph == "inpaint" && $0.sets["feather"] != "0.0" })
        #expect(cases.contains { $0.graph == "inpaint" && $0.sets["invert"] == "true" })
    }

    @Test("The PNG sanagraph writes equals the diffusers-convention reference within 2/255 per pixel",
          arguments: WorkflowCase.all)
    func pictureEqualsReference(_ c: WorkflowCase) throws {
        let dir = TestSupport.temporaryDirectory("sanagraph-workflow")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("\(c.id).png").path
        var sets = c.sets
        sets["output"] = out
        let r = try PipelineSupport.run(graph: PipelineSupport.graph(c.graph), sets: sets, directory: dir)
        try #require(r.status == 0, "\(r.stderr)")
        let (got, want) = try PipelineSupport.pixels(out, TestSupport.fixture("\(WorkflowCase.folder)/\(c.id).png"))
        #expect(got.shape == [1, 3, Int(c.sets["height"]!)!, Int(c.sets["width"]!)!])
        let diff = PipelineSupport.maxDifference255(got, want)
        #expect(diff <= 2.0 + 1e-3, "\(c.id): max difference \(diff)/255")
    }

    @Test("img2img.yaml and inpaint.yaml validate and run on the shipped model with their defaults; strength 0 gives back the VAE round trip")
    func graphsRunOnTheShippedModel() throws {
        let dir = TestSupport.temporaryDirectory("sanagraph-workflow-shipped")
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["img2img", "inpaint"] {
            let v = try CLI.run(["validate", PipelineSupport.graph(name)])
            #expect(v.status == 0, "\(name): \(v.stderr)")
            let out = dir.appendingPathComponent("\(name).png").path
            let r = try PipelineSupport.run(graph: PipelineSupport.graph(name), sets: ["output": out, "steps": "8"],
                                            directory: TestSupport.repositoryRoot)
            #expect(r.status == 0, "\(name): \(r.stderr)")
            #expect(FileManager.default.fileExists(atPath: out))
        }
        // strength 0: no step runs; the picture is the source through the autoencoder and back.
        let zero = dir.appendingPathComponent("zero.png").path
        let trip = dir.appendingPathComponent("trip.png").path
        let z = try PipelineSupport.run(graph: PipelineSupport.graph("img2img"), sets: ["output": zero, "strength": "0"],
                                        directory: TestSupport.repositoryRoot)
        try #require(z.status == 0, "\(z.stderr)")
        try Self.roundTrip(to: trip)
        let (a, b) = try PipelineSupport.pixels(zero, trip)
        #expect(PipelineSupport.maxDifference255(a, b) <= 1 + 1e-3)
    }

    /// The shipped picture through the shipped autoencoder and back.
    static func roundTrip(to path: String) throws {
        let r = try PipelineSupport.run(
            graph: TestSupport.fixture("Pipeline/vae-roundtrip.yaml"),
            sets: ["models": "models/sana-shapes", "image": "Graphs/inputs/shapes.png", "output": path],
            directory: TestSupport.repositoryRoot)
        guard r.status == 0 else { throw CLIError("round trip failed: \(r.stderr)") }
    }

    @Test("Inpainting on the shipped model keeps the pixels outside the mask (within the VAE's round-trip error) and changes the masked area")
    func inpaintKeepsTheUnmaskedArea() throws {
        let dir = TestSupport.temporaryDirectory("sanagraph-inpaint-keep")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("inpaint.png").path
        let trip = dir.appendingPathComponent("trip.png").path
        let r = try PipelineSupport.run(graph: PipelineSupport.graph("inpaint"), sets: ["output": out, "feather": "0"],
                                        directory: TestSupport.repositoryRoot)
        try #require(r.status == 0, "\(r.stderr)")
        try Self.roundTrip(to: trip)
        let source = TestSupport.repositoryRoot.appendingPathComponent("Graphs/inputs/shapes.png").path
        let maskPath = TestSupport.repositoryRoot.appendingPathComponent("Graphs/inputs/shapes-mask.png").path
        let (result, original) = try PipelineSupport.pixels(out, source)
        let (tripped, mask) = try PipelineSupport.pixels(trip, maskPath)
        let (h, w) = (original.shape[2], original.shape[3])
        // Latent cells (16 px for this autoencoder) the mask does not touch are kept; so are their pixels.
        let cell = 16
        let m = mask.scalars, res = result.scalars, src = original.scalars, rt = tripped.scalars
        var touched = Set<Int>()
        for y in 0..<h { for x in 0..<w where m[y * w + x] > 0 { touched.insert((y / cell) * (w / cell) + x / cell) } }
        var keptWorst: Float = 0, tripWorst: Float = 0, inside: Float = 0, insideCount = 0
        var keptSum: Float = 0, tripSum: Float = 0, versusTrip: Float = 0, keptCount = 0
        for y in 0..<h {
            for x in 0..<w {
                let i = y * w + x
                for c in 0..<3 {
                    let j = c * h * w + i
                    if !touched.contains((y / cell) * (w / cell) + x / cell) {
                        keptWorst = max(keptWorst, abs(res[j] - src[j]))
                        tripWorst = max(tripWorst, abs(rt[j] - src[j]))
                        keptSum += abs(res[j] - src[j])
                        tripSum += abs(rt[j] - src[j])
                        versusTrip += abs(res[j] - rt[j])
                        keptCount += 1
                    } else if m[i] > 0.5 {
                        inside += abs(res[j] - src[j])
                        insideCount += 1
                    }
                }
            }
        }
        let n = Float(keptCount)
        print("inpaint: kept pixels vs the source: max \(keptWorst * 255)/255, mean \(keptSum / n * 255)/255; the VAE "
              + "round trip vs the source: max \(tripWorst * 255)/255, mean \(tripSum / n * 255)/255; kept pixels vs "
              + "the round trip: mean \(versusTrip / n * 255)/255; masked area mean change \(inside / Float(insideCount) * 255)/255")
        #expect(keptCount > 0)
        #expect(keptWorst <= tripWorst + 2 / 255, "kept \(keptWorst * 255)/255, round trip \(tripWorst * 255)/255")
        #expect(keptSum <= tripSum + 0.5 / 255 * n)
        // The decoder mixes a little of the repainted cells into their neighbours, on average far below 1/255.
        #expect(versusTrip / n < 0.5 / 255, "kept pixels differ from the round trip by \(versusTrip / n * 255)/255 on average")
        #expect(inside / Float(insideCount) > 20 / 255, "the masked area barely changed")
    }
}
