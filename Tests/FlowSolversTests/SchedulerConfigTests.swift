import Foundation
import GraphRuntime
import Tensors
import SanaGraphKit
import Testing
import TestSupport
@testable import FlowSolvers

@Suite("scheduler_config.json")
struct SchedulerConfigTests {
    static func write(_ text: String) throws -> String {
        let dir = TestSupport.temporaryDirectory("flow-solvers")
        let path = dir.appendingPathComponent("scheduler_config.json").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("SANA's shipped config (written by diffusers, with -Infinity) loads as the defaults")
    func sanaConfigLoads() throws {
        let path = TestSupport.fixture("FlowSolvers/sana_scheduler/scheduler_config.json")
        let c = try SchedulerConfig.load(path: path)
        var expected = SchedulerConfig.sana
        expected.className = "DPMSolverMultistepScheduler"
        expected.flowShiftGiven = true
        #expect(c == expected)
        // A model folder with scheduler/ inside also works.
        let model = TestSupport.temporaryDirectory("flow-model")
        try FileManager.default.createDirectory(at: model.appendingPathComponent("scheduler"),
                                                withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: path,
                                         toPath: model.appendingPathComponent("scheduler/scheduler_config.json").path)
        #expect(try SchedulerConfig.load(path: model.path) == expected)
    }

    @Test("Heun, order 1 and another flow_shift are read")
    func settingsRead() throws {
        let c = try SchedulerConfig.load(path: try Self.write(
            #"{"solver_type": "heun", "solver_order": 1, "flow_shift": 6.0, "lambda_min_clipped": -Infinity}"#))
        #expect(c.solverType == "heun" && c.solverOrder == 1 && c.flowShift == 6.0)
    }

    @Test("Unsupported settings, bad JSON, wrong types and missing files are clear errors")
    func errors() throws {
        let sde = try Self.write(#"{"algorithm_type": "sde-dpmsolver++"}"#)
        #expect(throws: SchedulerFile.unsupported(path: sde, key: "algorithm_type", value: "sde-dpmsolver++",
                                                         supported: "dpmsolver++")) {
            try SchedulerConfig.load(path: sde)
        }
        do {
            _ = try SchedulerConfig.load(path: try Self.write(#"{"solver_order": 3}"#))
            Issue.record("expected an error")
        } catch let e as ModelFolderError {
            #expect(e.description.contains("solver_order = 3 is not supported"))
            #expect(e.category == .modelFile)
        }
        #expect(throws: ModelFolderError.self) { try SchedulerConfig.load(path: try Self.write("{not json")) }
        #expect(throws: ModelFolderError.self) { try SchedulerConfig.load(path: try Self.write("[1, 2]")) }
        #expect(throws: ModelFolderError.self) {
            try SchedulerConfig.load(path: try Self.write(#"{"lower_order_final": 1}"#))
        }
        #expect(throws: ModelFolderError.self) {
            try SchedulerConfig.load(path: try Self.write(#"{"use_karras_sigmas": true}"#))
        }
        #expect(throws: ModelFolderError.self) { try SchedulerConfig.load(path: "/nonexistent/scheduler") }
    }

    @Test("The sampler node's scheduler_config changes the update rule (heun vs midpoint)")
    func nodeAppliesConfig() throws {
        let path = try Self.write(#"{"solver_type": "heun"}"#)
        let latent = Tensor(shape: [1, 4, 1, 2], values: [0.3, -1.2, 0.8, 0.1, 2.0, -0.4, 0.9, -0.7])
        func run(_ params: ParamValues) throws -> Tensor {
            let out = try FlowDPMSolverNode().run(inputs: NodeTests.inputs(StandInDenoiser(), latent: latent),
                                                  params: params, context: RunContext(nodeID: "s"))
            guard let t = out["latent"]?.payload(as: Tensor.self) else { throw NodeError.failed(node: "s", message: "no latent") }
            return t
        }
        let heun = try run(NodeTests.params(FlowDPMSolverNode.self, ["scheduler_config": .string(path)]))
        let midpoint = try run(NodeTests.params(FlowDPMSolverNode.self))
        var config = SchedulerConfig.sana
        config.solverType = "heun"
        let direct = try FlowSampler.sample(kind: .dpmSolver, model: StandInDenoiser(), positive: NodeTests.cond,
                                            negative: NodeTests.negCond, latent: latent, noise: nil,
                                            options: SamplingOptions(config: config), context: RunContext(nodeID: "s"))
        #expect(heun.scalars == direct.scalars)
        #expect(heun.scalars != midpoint.scalars)
    }

    @Test("Without flow_shift in the config, a 4K-size model (sample_size 128) samples with 6.0 and others with 3.0")
    func missingFlowShiftFollowsTheModelSize() throws {
        let path = try Self.write(#"{"_class_name": "DPMSolverMultistepScheduler", "solver_order": 2}"#)
        let latent = Tensor(repeating: 0.4, shape: [1, 4, 1, 2])
        func firstTimestep(_ sampleSize: Int?, _ overrides: [String: ParamValue] = [:]) throws -> Float {
            let model = StandInDenoiser(sampleSize: sampleSize)
            var params = ["scheduler_config": ParamValue.string(path), "steps": .int(5)]
            for (k, v) in overrides { params[k] = v }
            _ = try FlowDPMSolverNode().run(inputs: NodeTests.inputs(model, latent: latent, negative: false),
                                            params: NodeTests.params(FlowDPMSolverNode.self, params),
                                            context: RunContext(nodeID: "s"))
            return model.timesteps[1]
        }
        let shifted6 = Float(FlowDPMSchedule(steps: 5, shift: 6, numTrainTimesteps: 1000).timesteps[1])
        let shifted3 = Float(FlowDPMSchedule(steps: 5, shift: 3, numTrainTimesteps: 1000).timesteps[1])
        #expect(shifted6 != shifted3)
        #expect(try firstTimestep(128) == shifted6)
        #expect(try firstTimestep(32) == shifted3)
        #expect(try firstTimestep(nil) == shifted3)
        #expect(try firstTimestep(128, ["shift": .float(3)]) == shifted3)
    }

    @Test("The sampler node reads scheduler_config and fingerprints its contents")
    func nodeUsesConfig() throws {
        let path = try Self.write(#"{"solver_type": "heun"}"#)
        let node = FlowDPMSolverNode()
        let params = NodeTests.params(FlowDPMSolverNode.self, ["scheduler_config": .string(path)])
        let f1 = try node.fingerprint(params: params)
        #expect(f1 != nil)
        try #"{"solver_type": "midpoint"}"#.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try node.fingerprint(params: params) != f1)
        #expect(try node.fingerprint(params: NodeTests.params(FlowDPMSolverNode.self)) == nil)
        #expect(throws: ModelFolderError.self) {
            try node.run(inputs: NodeTests.inputs(StandInDenoiser(), latent: .init(zeros: [1, 4, 1, 1])),
                         params: NodeTests.params(FlowDPMSolverNode.self, ["scheduler_config": .string("/nope")]),
                         context: RunContext(nodeID: "s"))
        }
    }
}
