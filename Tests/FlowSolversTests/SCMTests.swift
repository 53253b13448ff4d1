import DiffusionModels
import Foundation
import GraphRuntime
import Tensors
import Testing
import TestSupport
@testable import FlowSolvers

/// Sana-Sprint's SCMScheduler schedule against diffusers (tools/reference/scm_schedule.py) and sample.scm's
/// errors; whole Sprint pictures are compared with SanaSprintPipeline in Tests/CLITests/SanaFamilyPipelineTests.
@Suite("sample.scm (SCMScheduler)")
struct SCMTests {
    struct ScheduleCase: Decodable {
        let steps: Int
        let max_timesteps: Double
        let intermediate_timesteps: Double?
        let timesteps: [Double]
        let flow_times: [Double]
    }

    @Test("Times τ equal SCMScheduler.set_timesteps (float32) for 1 to 20 steps, with and without the 2-step middle")
    func scheduleMatchesDiffusers() throws {
        struct File: Decodable { let cases: [ScheduleCase] }
        let cases = try Fixtures.json("scm_schedules.json", as: File.self).cases
        #expect(cases.count >= 6)
        for c in cases {
            let s = SCMSchedule(steps: c.steps, maxTimestep: c.max_timesteps, intermediateTimestep: c.intermediate_timesteps)
            #expect(s.timesteps == c.timesteps.map { Float($0) }, "\(c.steps) steps")
            for (t, want) in zip(s.timesteps, c.flow_times) {
                let u = Foundation.sin(t) / (Foundation.cos(t) + Foundation.sin(t))
                #expect(abs(Double(u) - want) <= 1e-6, "flow time of τ \(t)")
            }
        }
    }

    @Test("One TorchGenerator drawn twice continues the stream of a single draw")
    func generatorContinuesItsStream() {
        var g = TorchGenerator(seed: 7)
        let first = g.randn(count: 32), second = g.randn(count: 48)
        #expect(first + second == TorchRandom.randn(count: 80, seed: 7))
        #expect(first == TorchRandom.randn(count: 32, seed: 7))
    }

    static func run(_ model: StandInDenoiser, _ overrides: [String: ParamValue], noise: Tensor? = nil) throws -> Tensor {
        var v: [String: Value] = ["model": .denoiser(model), "positive": .conditioning(NodeTests.cond),
                                  "latent": .latent(Tensor(repeating: 0.3, shape: [1, 4, 2, 3]))]
        if let noise { v["noise"] = .latent(noise) }
        let out = try SCMNode().run(inputs: NodeInputs(v, nodeID: "sample"),
                                    params: NodeTests.params(SCMNode.self, overrides),
                                    context: RunContext(nodeID: "sample"))
        guard let t = out["latent"]?.payload(as: Tensor.self) else {
            throw NodeError.invalidInput(node: "sample", message: "no latent")
        }
        return t
    }

    @Test("Sampling calls the model once per step with flow times in [0, 1] and the guidance × its scale")
    func stepsAndTimes() throws {
        let model = StandInDenoiser(takesGuidance: true)
        let out = try Self.run(model, ["steps": .int(4)])
        #expect(out.shape == [1, 4, 2, 3])
        #expect(model.predictCalls == 4)
        let schedule = SCMSchedule(steps: 4, intermediateTimestep: nil)
        for (got, s) in zip(model.timesteps, schedule.timesteps) {
            #expect(abs(got - Foundation.sin(s) / (Foundation.cos(s) + Foundation.sin(s))) < 1e-6)
        }
        #expect(model.timesteps.allSatisfy { $0 >= 0 && $0 <= 1.0001 })  // cos(1.5708) < 0 in float32
    }

    @Test("A model without a guidance embedding is refused, naming text2img.yaml")
    func cfgModelIsRefused() throws {
        #expect {
            _ = try Self.run(StandInDenoiser(takesGuidance: false), [:])
        } throws: { error in
            "\(error)".contains("text2img.yaml") && "\(error)".contains("sample")
        }
    }

    @Test("img2img: denoise < 1 needs 'noise'; a denoise that leaves no step is an error; strength picks the steps")
    func img2imgRules() throws {
        let model = StandInDenoiser(takesGuidance: true)
        #expect(throws: NodeError.self) { _ = try Self.run(model, ["denoise": .float(0.5)]) }
        let noise = Tensor(repeating: -0.2, shape: [1, 4, 2, 3])
        #expect { _ = try Self.run(model, ["denoise": .float(0), "steps": .int(3)], noise: noise) } throws: {
            "\($0)".contains("no step")
        }
        let counted = StandInDenoiser(takesGuidance: true)
        _ = try Self.run(counted, ["denoise": .float(0.5), "steps": .int(4)], noise: noise)
        #expect(counted.predictCalls == 2)
    }

    @Test("A DPM-Solver scheduler config is refused by sample.scm and an SCM one by the flow samplers, each naming the graph")
    func schedulerConfigsNameTheirGraph() throws {
        let dpm = Data(#"{"_class_name": "DPMSolverMultistepScheduler", "flow_shift": 3.0}"#.utf8)
        #expect { _ = try SCMConfig.parse(dpm, path: "x.json") } throws: { "\($0)".contains("text2img.yaml") }
        let scm = Data(#"{"_class_name": "SCMScheduler", "prediction_type": "trigflow", "sigma_data": 0.25}"#.utf8)
        #expect(try SCMConfig.parse(scm, path: "x.json").sigmaData == 0.25)
        #expect { _ = try SchedulerConfig.parse(scm, path: "x.json") } throws: { "\($0)".contains("sprint.yaml") }
    }
}
