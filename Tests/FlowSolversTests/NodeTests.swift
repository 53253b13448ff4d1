import DiffusionModels
import Foundation
import GraphRuntime
import Synchronization
import Tensors
import Testing
import TestSupport
@testable import FlowSolvers

@Suite("FlowSolvers nodes")
struct NodeTests {
    static func params(_ node: any Node.Type, _ overrides: [String: ParamValue] = [:]) -> ParamValues {
        var values: [String: ParamValue] = [:]
        for p in node.descriptor.params { if let d = p.defaultValue { values[p.name] = d } }
        for (k, v) in overrides { values[k] = v }
        return ParamValues(values)
    }

    static let cond = Conditioning(embeddings: Tensor(repeating: 0.5, shape: [1, 3, 4]),
                                   mask: Tensor(repeating: 1, shape: [1, 3]))
    static let negCond = Conditioning(embeddings: Tensor(repeating: -0.5, shape: [1, 3, 4]),
                                      mask: Tensor(repeating: 1, shape: [1, 3]))

    static func inputs(_ model: StandInDenoiser, latent: Tensor, noise: Tensor? = nil,
                       negative: Bool = true) -> NodeInputs {
        var v: [String: Value] = ["model": .denoiser(model), "positive": .conditioning(cond), "latent": .latent(latent)]
        if negative { v["negative"] = .conditioning(negCond) }
        if let noise { v["noise"] = .latent(noise) }
        return NodeInputs(v, nodeID: "sample")
    }

    @Test("The pack lists its five nodes with unique type names")
    func packRegisters() throws {
        let registry = try NodeRegistry(packs: [FlowSolversPack.self])
        #expect(registry.typeNames == ["latent.mask", "latent.noise", "sample.flow_dpm_solver", "sample.flow_euler", "sample.scm"])
    }

    @Test("latent.noise rejects sizes that are not multiples of downscale, in pixels, with a fix")
    func noiseValidation() {
        let node = LatentNoiseNode()
        let errors = node.validate(params: Self.params(LatentNoiseNode.self, ["width": .int(1000), "height": .int(512)]))
        #expect(errors == ["width 1000 px is not a multiple of 32 px (the latent cell size, 'downscale'); use 992 or 1024"])
        #expect(node.validate(params: Self.params(LatentNoiseNode.self)).isEmpty)
        let small = node.validate(params: Self.params(LatentNoiseNode.self, ["height": .int(20)]))
        #expect(small == ["height 20 px is not a multiple of 32 px (the latent cell size, 'downscale'); use 32"])
        #expect(throws: NodeError.self) {
            try node.run(inputs: NodeInputs([:]), params: Self.params(LatentNoiseNode.self, ["width": .int(33)]),
                         context: RunContext(nodeID: "noise"))
        }
    }

    @Test("latent.noise outputs [batch, channels, h/f, w/f] equal to torch.randn of that shape")
    func noiseRun() throws {
        let out = try LatentNoiseNode().run(
            inputs: NodeInputs([:]),
            params: Self.params(LatentNoiseNode.self, ["width": .int(1024), "height": .int(1024), "batch": .int(2),
                                                       "seed": .int(0)]),
            context: RunContext(nodeID: "noise"))
        guard let t = out["latent"]?.payload(as: Tensor.self) else { Issue.record("no latent"); return }
        #expect(t.shape == [2, 32, 32, 32])
        let ref = try Fixtures.tensors("noise.safetensors").tensor("randn_2x32x32x32_0")
        #expect(t.scalars.map(\.bitPattern) == ref.scalars.map(\.bitPattern))
    }

    @Test("Samplers report progress once per step", arguments: [FlowSolverKind.dpmSolver, .euler])
    func progressPerStep(kind: FlowSolverKind) throws {
        let events = Mutex<[(Int, Int)]>([])
        let context = RunContext(nodeID: "sample", onProgress: { _, done, total in
            events.withLock { $0.append((done, total)) }
        })
        let model = StandInDenoiser()
        let node: any Node = kind == .dpmSolver ? FlowDPMSolverNode() : FlowEulerNode()
        let out = try node.run(inputs: Self.inputs(model, latent: Tensor(repeating: 0.3, shape: [1, 4, 2, 2])),
                               params: Self.params(type(of: node), ["steps": .int(7)]), context: context)
        guard let t = out["latent"]?.payload(as: Tensor.self) else { Issue.record("no latent"); return }
        #expect(t.shape == [1, 4, 2, 2])
        let got = events.withLock { $0 }
        #expect(got.map(\.0) == Array(1...7))
        #expect(got.allSatisfy { $0.1 == 7 })
        #expect(model.predictCalls == 7 && model.prepareCalls == 1)
        #expect(Set(model.batches) == [2])
    }

    @Test("img2img progress counts only the steps that run")
    func img2imgProgress() throws {
        let events = Mutex<[Int]>([])
        let context = RunContext(nodeID: "sample", onProgress: { _, _, total in events.withLock { $0.append(total) } })
        let model = StandInDenoiser()
        let x = Tensor(repeating: 0.3, shape: [1, 4, 2, 2])
        _ = try FlowDPMSolverNode().run(inputs: Self.inputs(model, latent: x, noise: x),
                                        params: Self.params(FlowDPMSolverNode.self, ["denoise": .float(0.6)]),
                                        context: context)
        #expect(events.withLock { $0 } == Array(repeating: 12, count: 12))
        #expect(model.predictCalls == 12)
    }

    @Test("Cancellation stops sampling between steps")
    func cancellationBetweenSteps() throws {
        let token = CancellationToken()
        let context = RunContext(nodeID: "sample", cancellation: token, onProgress: { _, done, _ in
            if done == 2 { token.cancel() }
        })
        let model = StandInDenoiser()
        #expect(throws: NodeError.cancelled) {
            try FlowDPMSolverNode().run(inputs: Self.inputs(model, latent: Tensor(repeating: 0.3, shape: [1, 4, 2, 2])),
                                        params: Self.params(FlowDPMSolverNode.self), context: context)
        }
        #expect(model.predictCalls == 2)
    }

    @Test("Bad inputs give clear errors: channels, denoise without noise, noise shape, Sprint models")
    func badInputs() throws {
        let p = Self.params(FlowEulerNode.self)
        let ctx = RunContext(nodeID: "sample")
        do {
            _ = try FlowEulerNode().run(inputs: Self.inputs(StandInDenoiser(inChannels: 32),
                                                            latent: Tensor(zeros: [1, 4, 2, 2])), params: p, context: ctx)
            Issue.record("expected an error")
        } catch let e as NodeError {
            #expect(e.description.contains("latent has 4 channels but the model takes 32"))
        }
        do {
            _ = try FlowEulerNode().run(inputs: Self.inputs(StandInDenoiser(), latent: Tensor(zeros: [1, 4, 2, 2])),
                                        params: Self.params(FlowEulerNode.self, ["denoise": .float(0.5)]), context: ctx)
            Issue.record("expected an error")
        } catch let e as NodeError {
            #expect(e.description.contains("connect the clean latent to 'latent' and a latent.noise node to 'noise'"))
        }
        #expect(throws: NodeError.self) {
            try FlowEulerNode().run(inputs: Self.inputs(StandInDenoiser(), latent: Tensor(zeros: [1, 4, 2, 2]),
                                                        noise: Tensor(zeros: [1, 4, 2, 3])), params: p, context: ctx)
        }
        #expect(throws: NodeError.self) {
            try FlowEulerNode().run(inputs: Self.inputs(StandInDenoiser(takesGuidance: true),
                                                        latent: Tensor(zeros: [1, 4, 2, 2])), params: p, context: ctx)
        }
        #expect(throws: NodeError.self) {
            try FlowEulerNode().run(inputs: Self.inputs(StandInDenoiser(), latent: Tensor(zeros: [4, 2, 2])),
                                    params: p, context: ctx)
        }
    }

    @Test("denoise 0 with noise returns the clean latent unchanged, without model calls")
    func denoiseZero() throws {
        let model = StandInDenoiser()
        let x = Tensor(shape: [1, 4, 1, 1], values: [1, 2, 3, 4])
        let out = try FlowDPMSolverNode().run(inputs: Self.inputs(model, latent: x, noise: Tensor(zeros: [1, 4, 1, 1])),
                                              params: Self.params(FlowDPMSolverNode.self, ["denoise": .float(0)]),
                                              context: RunContext(nodeID: "s"))
        guard let t = out["latent"]?.payload(as: Tensor.self) else { Issue.record("no latent"); return }
        #expect(t.scalars == [1, 2, 3, 4])
        #expect(model.predictCalls == 0)
    }
}
