import Foundation
import SanaGraphKit
import DiffusionModels
import Tensors

/// Shared declaration and run logic of the two sampler nodes.
enum SampleNodeSupport {
    static func descriptor(typeName: String, summary: String, stepsDoc: String) -> NodeDescriptor {
        NodeDescriptor(
            typeName: typeName, version: 2, summary: summary,
            inputs: [
                InputSpec("model", .denoiserModel, doc: "the denoiser (e.g. dit.load)"),
                InputSpec("positive", .conditioning, doc: "prompt conditioning (text.encode)"),
                InputSpec("negative", .conditioning, optional: true,
                          doc: "negative-prompt conditioning; used when guidance > 1"),
                InputSpec("latent", .latent,
                          doc: "initial noise (latent.noise); with 'noise' connected, the clean latent to re-noise"),
                InputSpec("noise", .latent, optional: true,
                          doc: "img2img: noise mixed into 'latent' at the first used sigma (needed when denoise < 1)"),
            ],
            outputs: [OutputSpec("latent", .latent, doc: "denoised latent")],
            params: [
                ParamSpec("steps", .int, default: .int(20), min: 1, max: 1000, doc: stepsDoc),
                ParamSpec("guidance", .float, default: .float(4.5), min: 0, max: 100,
                          doc: "classifier-free guidance scale; <= 1 runs without the negative branch"),
                ParamSpec("shift", .float, default: .float(0), min: 0, max: 100,
                          doc: "flow shift of the sigma schedule (SANA: 3.0; 4K models: 6.0); 0 = the "
                              + "scheduler config's flow_shift (3.0 without a config)"),
                ParamSpec("denoise", .float, default: .float(1.0), min: 0, max: 1,
                          doc: "img2img strength: runs the last steps*denoise steps (needs 'noise' when < 1)"),
                ParamSpec("scheduler_config", .path, default: .string(""),
                          doc: "optional diffusers scheduler_config.json, scheduler folder or model folder; "
                              + "empty = SANA's settings"),
            ])
    }

    static func schedulerConfig(_ params: ParamValues) throws -> SchedulerConfig {
        guard let path = params.optionalString("scheduler_config") else { return .sana }
        return try SchedulerConfig.load(path: path)
    }

    /// Hash of the scheduler config file, so editing it invalidates cached samples.
    static func fingerprint(_ params: ParamValues) throws -> String? {
        guard let path = params.optionalString("scheduler_config") else { return nil }
        _ = try SchedulerConfig.load(path: path)
        let fm = FileManager.default
        var isDir: ObjCBool = false
        var file = path
        if fm.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            file = [path + "/scheduler_config.json", path + "/scheduler/scheduler_config.json"]
                .first(where: { fm.fileExists(atPath: $0) }) ?? path
        }
        let bytes = fm.contents(atPath: file) ?? Data()
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a 64
        for b in bytes {
            hash ^= UInt64(b)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return "scheduler_config:" + String(hash, radix: 16)
    }

    static func run(kind: FlowSolverKind, inputs: NodeInputs, params: ParamValues,
                    context: RunContext) throws -> NodeOutputs {
        let config = try schedulerConfig(params)
        // 0 = "as the model's scheduler config says" (SANA's 3.0 when there is none).
        let shift = params.double("shift") > 0 ? params.double("shift") : config.flowShift
        if params.optionalString("scheduler_config") != nil, config.flowShift != shift {
            let message = "\(context.nodeID): shift \(shift) is used; the scheduler config's flow_shift is "
                + "\(config.flowShift)"
            context.logger.notice("\(message)")
        }
        let options = SamplingOptions(steps: params.int("steps"), guidance: params.double("guidance"),
                                      shift: shift, denoise: params.double("denoise"), config: config)
        let out = try FlowSampler.sample(
            kind: kind, model: try inputs.denoiser("model"), positive: try inputs.conditioning("positive"),
            negative: try inputs.optionalConditioning("negative"), latent: try inputs.tensor("latent"),
            noise: try inputs.optionalTensor("noise"), options: options, context: context)
        return ["latent": .latent(out)]
    }
}

/// `sample.flow_dpm_solver`: Flow-DPM-Solver (DPM-Solver++ 2M on shifted flow sigmas), SANA's default sampler.
public struct FlowDPMSolverNode: Node {
    public static let descriptor = SampleNodeSupport.descriptor(
        typeName: "sample.flow_dpm_solver",
        summary: "Flow-DPM-Solver (DPM-Solver++ 2M, flow sigmas) with classifier-free guidance",
        stepsDoc: "sampling steps (SANA: 20)")

    public init() {}

    public func fingerprint(params: ParamValues) throws -> String? { try SampleNodeSupport.fingerprint(params) }

    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        try SampleNodeSupport.run(kind: .dpmSolver, inputs: inputs, params: params, context: context)
    }
}

/// `sample.flow_euler`: first-order flow-matching Euler (`FlowMatchEulerDiscreteScheduler`).
public struct FlowEulerNode: Node {
    public static let descriptor = SampleNodeSupport.descriptor(
        typeName: "sample.flow_euler",
        summary: "Flow-matching Euler sampler with classifier-free guidance",
        stepsDoc: "sampling steps (SANA's original flow_euler uses 28)")

    public init() {}

    public func fingerprint(params: ParamValues) throws -> String? { try SampleNodeSupport.fingerprint(params) }

    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        try SampleNodeSupport.run(kind: .euler, inputs: inputs, params: params, context: context)
    }
}
