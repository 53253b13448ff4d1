import GraphRuntime
import Tensors

/// `latent.noise`: standard-normal latents [batch, channels, height/downscale, width/downscale], by default
/// bit-identical to `torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed))`.
public struct LatentNoiseNode: Node {
    /// Random generators offered by `rng`.
    public enum Generator: String, CaseIterable, Sendable {
        /// PyTorch's CPU generator (mt19937 + torch's Box-Muller), as diffusers' pipelines use.
        case torch
    }

    public static let descriptor = NodeDescriptor(
        typeName: "latent.noise", version: 1,
        summary: "Gaussian latent noise, bit-identical to torch.randn with a seeded CPU generator",
        outputs: [OutputSpec("latent", .latent, doc: "noise [batch, channels, height/downscale, width/downscale]")],
        params: [
            ParamSpec("width", .int, default: .int(1024), min: 1, max: 65536, doc: "image width in pixels"),
            ParamSpec("height", .int, default: .int(1024), min: 1, max: 65536, doc: "image height in pixels"),
            ParamSpec("channels", .int, default: .int(32), min: 1, max: 4096, doc: "latent channels (SANA: 32)"),
            ParamSpec("downscale", .int, default: .int(32), min: 1, max: 1024,
                      doc: "pixels per latent cell (the autoencoder's factor; DC-AE f32: 32)"),
            ParamSpec("batch", .int, default: .int(1), min: 1, max: 4096, doc: "number of latents"),
            ParamSpec("seed", .int, default: .int(0), doc: "generator seed (as torch's manual_seed)"),
            ParamSpec("rng", .choice(Generator.allCases.map(\.rawValue)), default: .string("torch"),
                      doc: "random generator"),
        ])

    /// Largest number of elements generated (4K SANA latents are 0.5 M per image).
    public static let maxElements = 1 << 30

    public init() {}

    public func validate(params: ParamValues) -> [String] {
        var errors: [String] = []
        let f = params.int("downscale")
        for name in ["width", "height"] {
            let v = params.int(name)
            if f > 0, v % f != 0 {
                let down = v / f * f
                let up = (v / f + 1) * f
                let fix = down >= f ? "use \(down) or \(up)" : "use \(up)"
                errors.append("\(name) \(v) px is not a multiple of \(f) px (the latent cell size, 'downscale'); "
                    + fix)
            }
        }
        if errors.isEmpty, f > 0 {
            let count = params.int("batch") * params.int("channels") * (params.int("height") / f)
                * (params.int("width") / f)
            if count > Self.maxElements {
                errors.append("the noise would have \(count) elements (more than \(Self.maxElements)); lower the "
                    + "size or batch")
            }
        }
        return errors
    }

    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        let problems = validate(params: params)
        guard problems.isEmpty else {
            throw NodeError.invalidParam(node: context.nodeID, param: "width/height",
                                         message: problems.joined(separator: "; "))
        }
        let f = params.int("downscale")
        let shape = [params.int("batch"), params.int("channels"), params.int("height") / f, params.int("width") / f]
        switch Generator(rawValue: params.string("rng")) {
        case .torch:
            return ["latent": .latent(TorchRandom.randn(shape: shape, seed: params.int("seed")))]
        case nil:
            throw NodeError.invalidParam(node: context.nodeID, param: "rng",
                                         message: "unknown generator '\(params.string("rng"))'; use torch")
        }
    }
}
