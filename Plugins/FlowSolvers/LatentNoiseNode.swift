import SanaGraphKit
import DiffusionModels
import Tensors

/// `latent.noise`: standard-normal latents [batch, channels, height/downscale, width/downscale], by default
/// bit-identical to `torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed))`.
///
/// With the optional `model` and `vae` inputs connected it follows SanaPipeline's `prepare_latents`: channels and
/// downscale come from the autoencoder, width/height 0 mean the model's native size (`sample_size` × downscale,
/// SanaPipeline's 1024 px default for the SANA 1024 px checkpoints), and `resolution_binning` replaces the size by
/// the nearest aspect-ratio bin (`dcae.decode`'s width/height then resize the image back).
public struct LatentNoiseNode: Node {
    /// Random generators offered by `rng`.
    public enum Generator: String, CaseIterable, Sendable {
        /// PyTorch's CPU generator (mt19937 + torch's Box-Muller), as diffusers' pipelines use.
        case torch
    }

    public static let descriptor = NodeDescriptor(
        typeName: "latent.noise", version: 2,
        summary: "Gaussian latent noise, bit-identical to torch.randn with a seeded CPU generator",
        inputs: [
            InputSpec("model", .denoiserModel, optional: true,
                      doc: "the denoiser (dit.load): native size for width/height 0, the binning table, the patch "
                          + "size, and the channels when no vae is connected"),
            InputSpec("vae", .autoencoderModel, optional: true,
                      doc: "the autoencoder (dcae.load): latent channels and downscale (the params are then unused)"),
        ],
        outputs: [OutputSpec("latent", .latent, doc: "noise [batch, channels, height/downscale, width/downscale]")],
        params: [
            ParamSpec("width", .int, default: .int(1024), min: 0, max: 65536,
                      doc: "image width in pixels, a multiple of 32; 0 = the model's native size (needs 'model')"),
            ParamSpec("height", .int, default: .int(1024), min: 0, max: 65536,
                      doc: "image height in pixels, a multiple of 32; 0 = the model's native size (needs 'model')"),
            ParamSpec("channels", .int, default: .int(32), min: 1, max: 4096,
                      doc: "latent channels (SANA: 32); taken from 'vae' or 'model' when connected"),
            ParamSpec("downscale", .int, default: .int(32), min: 1, max: 1024,
                      doc: "pixels per latent cell (the autoencoder's factor; DC-AE f32: 32); taken from 'vae' "
                          + "when connected"),
            ParamSpec("batch", .int, default: .int(1), min: 1, max: 4096, doc: "number of latents"),
            ParamSpec("seed", .int, default: .int(0), doc: "generator seed (as torch's manual_seed)"),
            ParamSpec("rng", .choice(Generator.allCases.map(\.rawValue)), default: .string("torch"),
                      doc: "random generator"),
            ParamSpec("resolution_binning", .bool, default: .bool(false),
                      doc: "use the nearest aspect-ratio bin of the model's table instead of width × height "
                          + "(diffusers' use_resolution_binning; needs 'model'; resize back in dcae.decode)"),
        ],
        // Regenerating noise is as cheap as reading it back: keep it out of the disk cache (docs/cache.md).
        diskCacheable: false)

    /// Largest number of elements generated (4K SANA latents are 0.5 M per image).
    public static let maxElements = 1 << 30
    /// SanaPipeline.check_inputs: "`height` and `width` have to be divisible by 32".
    public static let pipelineMultiple = 32

    public init() {}

    public func validate(params: ParamValues) -> [String] {
        var errors: [String] = []
        let f = params.int("downscale")
        let binning = params.bool("resolution_binning")
        for name in ["width", "height"] {
            let v = params.int(name)
            if binning {
                // Any size is allowed: it is binned, then the decoded image is resized back to it.
                if v == 0 {
                    errors.append("\(name) 0 (the model's native size) cannot be used with resolution_binning: "
                        + "give \(name) in pixels, the size dcae.decode resizes the binned image back to")
                }
                continue
            }
            guard v != 0, f > 0 else { continue }
            let m = Self.lcm(Self.pipelineMultiple, f)
            if v % m != 0 {
                let down = v / m * m
                let up = (v / m + 1) * m
                let fix = down >= m ? "use \(down) or \(up)" : "use \(up)"
                let why = m == f ? "the latent cell size, 'downscale'"
                    : "SanaPipeline's rule, and of the latent cell size 'downscale' \(f)"
                errors.append("\(name) \(v) px is not a multiple of \(m) px (\(why)); " + fix)
            }
        }
        let w = params.int("width"), h = params.int("height")
        if errors.isEmpty, f > 0, w > 0, h > 0, !binning {
            let count = params.int("batch") * params.int("channels") * (h / f) * (w / f)
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
        let model = inputs["model"] == nil ? nil : try inputs.denoiser("model")
        let vae = inputs["vae"] == nil ? nil : try inputs.autoencoder("vae")
        var channels = params.int("channels"), f = params.int("downscale")
        if let vae {
            channels = vae.latentChannels
            f = vae.downscale
            if let model, model.inChannels != vae.latentChannels {
                throw NodeError.invalidInput(node: context.nodeID, message: "the vae makes \(vae.latentChannels)-"
                    + "channel latents but the model takes \(model.inChannels) channels; load the transformer and "
                    + "the vae of the same model")
            }
        } else if let model {
            channels = model.inChannels
        }
        guard f > 0 else {
            throw NodeError.invalidInput(node: context.nodeID, message: "the vae reports downscale \(f)")
        }

        var size = (width: params.int("width"), height: params.int("height"))
        if size.width == 0 || size.height == 0 {
            let name = size.width == 0 ? "width" : "height"
            guard let model else {
                throw NodeError.invalidParam(node: context.nodeID, param: name, message: "\(name) 0 means the "
                    + "model's native size: connect the 'model' input (dit.load) or give \(name) in pixels")
            }
            guard let s = model.sampleSize, s > 0 else {
                throw NodeError.invalidParam(node: context.nodeID, param: name, message: "the model does not "
                    + "say its native size (sample_size); give \(name) in pixels")
            }
            if size.width == 0 { size.width = s * f }
            if size.height == 0 { size.height = s * f }
        }

        if params.bool("resolution_binning") {
            guard let model, let s = model.sampleSize else {
                throw NodeError.invalidParam(node: context.nodeID, param: "resolution_binning", message: "binning "
                    + "picks its table from the transformer's sample_size: connect the 'model' input (dit.load)")
            }
            guard let table = AspectRatioBins.table(sampleSize: s),
                  let bin = AspectRatioBins.nearest(height: size.height, width: size.width, in: table) else {
                throw NodeError.invalidParam(node: context.nodeID, param: "resolution_binning", message: "no "
                    + "aspect-ratio bins for sample_size \(s) (diffusers has them for 16, 32, 64 and 128); set "
                    + "resolution_binning to false")
            }
            if bin.width != size.width || bin.height != size.height {
                context.logger.notice("""
                    \(context.nodeID): resolution binning: \(size.width)×\(size.height) px is generated at the \
                    \(bin.width)×\(bin.height) px bin (aspect ratio \(bin.key))
                    """)
            }
            size = (bin.width, bin.height)
        }

        let cell = f * (model?.patchSize ?? 1)
        for (name, v) in [("width", size.width), ("height", size.height)] where v % cell != 0 {
            let why = cell == f ? "the vae's downscale \(f)"
                : "the vae's downscale \(f) × the transformer's patch_size \(cell / f)"
            let up = (v / cell + 1) * cell
            throw NodeError.invalidParam(node: context.nodeID, param: name, message: "\(name) \(v) px is not a "
                + "multiple of \(cell) px (\(why)); use \(v >= cell ? "\(v / cell * cell) or " : "")\(up)")
        }
        let shape = [params.int("batch"), channels, size.height / f, size.width / f]
        let count = shape.reduce(1, *)
        guard count <= Self.maxElements else {
            throw NodeError.invalidParam(node: context.nodeID, param: "width/height", message: "the noise would "
                + "have \(count) elements (more than \(Self.maxElements)); lower the size or batch")
        }
        switch Generator(rawValue: params.string("rng")) {
        case .torch:
            return ["latent": .latent(TorchRandom.randn(shape: shape, seed: params.int("seed")))]
        case nil:
            throw NodeError.invalidParam(node: context.nodeID, param: "rng",
                                         message: "unknown generator '\(params.string("rng"))'; use torch")
        }
    }

    static func lcm(_ a: Int, _ b: Int) -> Int {
        var (x, y) = (a, b)
        while y != 0 { (x, y) = (y, x % y) }
        return a / x * b
    }
}
