import Foundation
import SanaGraphKit
import DiffusionModels
import Tensors

/// diffusers `Encoder` of `AutoencoderDC`: image `[B, in, H, W]` in [-1, 1] → raw latent `[B, latent, H/f, W/f]`.
struct DCEncoder: Sendable {
    /// A 3×3 conv, or (when `layers_per_block[0] == 0`) a shortcut-less down block.
    enum ConvIn: Sendable { case conv(Conv2d), down(DCDownBlock2d) }
    var conv_in: ConvIn
    var down_blocks: [[StageBlock]]
    var conv_out: Conv2d
    var outShortcutGroupSize: Int?

    init(_ w: WeightStore, _ c: AutoencoderDCConfig) {
        let p = "encoder."
        let out = c.encoderBlockOutChannels, layers = c.encoderLayersPerBlock
        let pixelUnshuffle = c.downsampleBlockType == "pixel_unshuffle"
        if layers[0] > 0 {
            conv_in = .conv(Conv2d(w, p + "conv_in", c.inChannels, out[0], kernel: 3))
        } else {
            conv_in = .down(DCDownBlock2d(w, p + "conv_in", c.inChannels, out[1], downsample: pixelUnshuffle, shortcut: false))
        }
        down_blocks = []
        for i in 0..<out.count {
            var stage: [StageBlock] = []
            for j in 0..<layers[i] {
                stage.append(.make(w, p + "down_blocks.\(i).\(j)", type: c.encoderBlockTypes.stage(i) ?? "ResBlock", out[i],
                                   headDim: c.attentionHeadDim, kernelSizes: c.encoderQkvMultiscales[i],
                                   normType: "rms_norm", actFn: "silu"))
            }
            if i < out.count - 1 && layers[i] > 0 {
                stage.append(.down(DCDownBlock2d(w, p + "down_blocks.\(i).\(layers[i])", out[i], out[i + 1],
                                                 downsample: pixelUnshuffle, shortcut: true)))
            }
            down_blocks.append(stage)
        }
        conv_out = Conv2d(w, p + "conv_out", out[out.count - 1], c.latentChannels, kernel: 3)
        outShortcutGroupSize = c.encoderOutShortcut ? out[out.count - 1] / c.latentChannels : nil
    }

    func callAsFunction(_ x: Tensor) -> Tensor { forward(x) {} }

    /// The forward pass; `cancel` runs before every block so long encodes stop promptly.
    func forward(_ x: Tensor, cancel: () throws -> Void) rethrows -> Tensor {
        try tail(head(x, cancel: cancel), cancel: cancel)
    }

    /// Stages before the first EfficientViT block: only convolutions and per-pixel ops, so they can run in bands.
    var localStages: Int { down_blocks.firstIndex { $0.contains { if case .efficientViT = $0 { true } else { false } } } ?? down_blocks.count }

    /// conv_in and the local stages.
    func head(_ x: Tensor, cancel: () throws -> Void) rethrows -> Tensor {
        var h: Tensor
        switch conv_in {
        case .conv(let conv): h = conv(x)
        case .down(let down): h = down(x)
        }
        for stage in down_blocks.prefix(localStages) {
            for block in stage {
                try cancel()
                h = block(h)
            }
        }
        return h
    }

    /// The remaining stages (global attention) and conv_out with the out-shortcut; `limit` as the decoder's head.
    func tail(_ x: Tensor, limit: Int = .max, cancel: () throws -> Void) rethrows -> Tensor {
        var h = x
        for stage in down_blocks.dropFirst(localStages) {
            for block in stage {
                try cancel()
                h = block(h, limit: limit)
            }
        }
        var y = conv_out(h)
        if let g = outShortcutGroupSize { DCAEKernels.addGroupMean(&y, h, groupSize: g) }
        return y
    }

    /// Input pixels per head-output row, and the head's receptive-field margin in head-output rows (plus one).
    var headGeometry: (scale: Int, halo: Int) {
        var scale = 1, halo = 0  // halo in pixels of the current (walking backwards) resolution
        for stage in down_blocks.prefix(localStages).reversed() {
            for block in stage.reversed() {
                switch block {
                case .res: halo += 2
                case .down: halo = 2 * halo + 2; scale *= 2
                case .efficientViT, .up: break
                }
            }
        }
        switch conv_in {
        case .conv: halo += 1
        case .down: halo = 2 * halo + 2; scale *= 2
        }
        return (scale, (halo + scale - 1) / scale + 1)
    }

    var bytes: Int {
        let inBytes: Int
        switch conv_in {
        case .conv(let c): inBytes = c.bytes
        case .down(let d): inBytes = d.bytes
        }
        return inBytes + conv_out.bytes + down_blocks.joined().reduce(0) { $0 + $1.bytes }
    }
}

/// diffusers `Decoder` of `AutoencoderDC`: raw latent `[B, latent, h, w]` → image `[B, in, h·f, w·f]` (≈ [-1, 1],
/// not clamped).
struct DCDecoder: Sendable {
    enum ConvOut: Sendable { case conv(Conv2d), up(DCUpBlock2d) }
    var conv_in: Conv2d
    var inShortcutRepeats: Int?
    /// `up_blocks[i]`, run from the last stage to the first.
    var up_blocks: [[StageBlock]]
    var norm_out: ChannelNorm
    var conv_act: Activation
    var conv_out: ConvOut

    init(_ w: WeightStore, _ c: AutoencoderDCConfig) {
        let p = "decoder."
        let out = c.decoderBlockOutChannels, layers = c.decoderLayersPerBlock, n = out.count
        let interpolate = c.upsampleBlockType == "interpolate"
        conv_in = Conv2d(w, p + "conv_in", c.latentChannels, out[n - 1], kernel: 3)
        inShortcutRepeats = c.decoderInShortcut ? out[n - 1] / c.latentChannels : nil
        up_blocks = []
        for i in 0..<n {
            var stage: [StageBlock] = []
            if i < n - 1 && layers[i] > 0 {
                stage.append(.up(DCUpBlock2d(w, p + "up_blocks.\(i).0", out[i + 1], out[i], interpolate: interpolate,
                                             shortcut: true)))
            }
            for _ in 0..<layers[i] {
                stage.append(.make(w, p + "up_blocks.\(i).\(stage.count)", type: c.decoderBlockTypes.stage(i) ?? "ResBlock",
                                   out[i], headDim: c.attentionHeadDim, kernelSizes: c.decoderQkvMultiscales[i],
                                   normType: c.decoderNormTypes.stage(i) ?? "rms_norm", actFn: c.decoderActFns.stage(i) ?? "silu"))
            }
            up_blocks.append(stage)
        }
        let channels = layers[0] > 0 ? out[0] : out[1]
        norm_out = ChannelNorm(w, p + "norm_out", channels, type: "rms_norm")
        conv_act = Activation(c.decoderConvActFn)
        if layers[0] > 0 {
            conv_out = .conv(Conv2d(w, p + "conv_out", channels, c.inChannels, kernel: 3))
        } else {
            conv_out = .up(DCUpBlock2d(w, p + "conv_out", channels, c.inChannels, interpolate: interpolate, shortcut: false))
        }
    }

    func callAsFunction(_ z: Tensor) -> Tensor { forward(z) {} }

    /// The forward pass; `cancel` runs before every block so long decodes stop promptly.
    func forward(_ z: Tensor, cancel: () throws -> Void) rethrows -> Tensor {
        try tail(head(z, cancel: cancel), cancel: cancel)
    }

    /// Stages `0..<localStages` (run last) hold no EfficientViT block: only convolutions and per-pixel ops.
    var localStages: Int { up_blocks.firstIndex { $0.contains { if case .efficientViT = $0 { true } else { false } } } ?? up_blocks.count }

    /// conv_in with the in-shortcut and the stages with global attention; `limit` bounds the EfficientViT blocks'
    /// working memory (bytes).
    func head(_ z: Tensor, limit: Int = .max, cancel: () throws -> Void) rethrows -> Tensor {
        var h = SectionProfile.measure("dcae conv_in / conv_out") { conv_in(z) }
        if let r = inShortcutRepeats { DCAEKernels.addRepeatedChannels(&h, z, repeats: r) }
        for stage in up_blocks.dropFirst(localStages).reversed() {
            h = try StageBlock.run(stage, h, limit: limit, cancel: cancel)
        }
        return h
    }

    /// The local stages, norm_out, the activation and conv_out.
    func tail(_ x: Tensor, cancel: () throws -> Void) rethrows -> Tensor {
        var h = x
        for stage in up_blocks.prefix(localStages).reversed() {
            h = try StageBlock.run(stage, h, cancel: cancel)
        }
        h = SectionProfile.measure("dcae norms + residuals") { norm_out(h) }
        SectionProfile.measure("dcae activations") { conv_act.apply(&h) }
        switch conv_out {
        case .conv(let conv): return SectionProfile.measure("dcae conv_in / conv_out") { conv(h) }
        case .up(let up): return up(h)
        }
    }

    /// Output pixels per head-output row, and the tail's receptive-field margin in head-output rows (plus one).
    var tailGeometry: (scale: Int, halo: Int) {
        var scale = 1, halo = 0  // halo in rows of the current (walking backwards) resolution
        func throughUp(_ u: DCUpBlock2d) {
            // interpolate: the conv runs after the ×2 upsample; pixel_shuffle: before it.
            halo = u.interpolate ? (halo + 2) / 2 : (halo + 1) / 2 + 1
            scale *= 2
        }
        switch conv_out {
        case .conv: halo += 1
        case .up(let u): throughUp(u)
        }
        for stage in up_blocks.prefix(localStages) {
            for block in stage.reversed() {
                switch block {
                case .res: halo += 2
                case .up(let u): throughUp(u)
                case .efficientViT, .down: break
                }
            }
        }
        return (scale, halo + 1)
    }

    var bytes: Int {
        let outBytes: Int
        switch conv_out {
        case .conv(let c): outBytes = c.bytes
        case .up(let u): outBytes = u.bytes
        }
        return conv_in.bytes + norm_out.bytes + outBytes + up_blocks.joined().reduce(0) { $0 + $1.bytes }
    }
}

/// Bad input to a loaded autoencoder (wrong channels or sizes). Nodes rethrow it naming themselves.
public struct DCAEInputError: Error, CustomStringConvertible, Equatable {
    public var description: String
}

/// diffusers `AutoencoderDC` (SANA's deep-compression autoencoder): fp32 activations, dense convolutions at the
/// load's precision.
///
/// A loaded model converts each half's weights on its first use: a text-to-image run only ever decodes, so the
/// encoder (half of DC-AE f32c32, 0.6 GB in fp32) is never converted, and the decoder's 0.6 GB are not held while
/// the transformer samples.
public final class AutoencoderDC: AutoencoderModel, @unchecked Sendable {
    public let config: AutoencoderDCConfig
    /// The precision the dense convolutions compute at (depthwise and grouped ones stay fp32).
    public let precision: Precision
    /// A fresh store over the checked weights (each half reads its own keys); nil when built eagerly.
    private let source: (@Sendable () -> WeightStore)?
    private let lock = NSLock()
    private var encoderHalf: DCEncoder?
    private var decoderHalf: DCDecoder?

    /// Both halves from weights in hand.
    init(config: AutoencoderDCConfig, weights: WeightStore) {
        self.config = config
        precision = weights.precision
        source = nil
        encoderHalf = DCEncoder(weights, config)
        decoderHalf = DCDecoder(weights, config)
    }

    /// Each half built from a `source()` store when first used.
    init(config: AutoencoderDCConfig, precision: Precision = .fp32, source: @escaping @Sendable () -> WeightStore) {
        self.config = config
        self.precision = precision
        self.source = source
    }

    /// The kernel running the dense convolutions, e.g. "oneDNN brgconv:avx512_core_amx" (a probe filter: the
    /// halves are built on first use).
    public var kernel: String {
        ConvWeight(Tensor(repeating: 0.5, shape: [16, 16, 3, 3]), bias: nil, padding: 1, precision: precision).kernel
    }

    /// Bytes of weights converted so far (the halves used so far).
    public var residentBytes: Int { lock.withLock { (encoderHalf?.bytes ?? 0) + (decoderHalf?.bytes ?? 0) } }

    /// Whether the encoder's weights have been converted (it is built on the first encode).
    public var encoderIsLoaded: Bool { lock.withLock { encoderHalf != nil } }

    func encoder() throws -> DCEncoder { try half(\.encoderHalf, DCEncoder.init) }

    func decoder() throws -> DCDecoder { try half(\.decoderHalf, DCDecoder.init) }

    /// The half in `slot`, built from the weights on first use (it reads only its own keys); a read failure
    /// (unreadable or non-finite tensor) is thrown and nothing is kept.
    private func half<Half>(_ slot: ReferenceWritableKeyPath<AutoencoderDC, Half?>,
                            _ build: (WeightStore, AutoencoderDCConfig) -> Half) throws -> Half {
        try lock.withLock {
            if let built = self[keyPath: slot] { return built }
            let store = source!()
            let built = build(store, config)
            try store.finish()
            self[keyPath: slot] = built
            return built
        }
    }

    public var latentChannels: Int { config.latentChannels }
    public var downscale: Int { config.spatialCompressionRatio }
    public var scalingFactor: Float { Float(config.scalingFactor) }
    /// The folder's latent_preview.json projection (set once by the loader, before the model is shared).
    public internal(set) var latentPreview: LatentPreview?

    /// The decoder on raw latents, untiled (diffusers `decoder(z)`).
    public func decoderForward(_ latent: Tensor) throws -> Tensor {
        try checkLatent(latent)
        return try decoder()(latent)
    }

    /// The encoder on images in [-1, 1], untiled (diffusers `encoder(x)`).
    public func encoderForward(_ image: Tensor) throws -> Tensor {
        try checkImage(image)
        return try encoder()(image)
    }

    /// Decodes raw latents. `tileSize` N (nil/0 = automatic, 1024) bounds memory for large images: above N² pixels
    /// the global-attention stages run on the whole (small) latent-resolution map and the local high-resolution
    /// stages run in full-width bands with a receptive-field margin — the result equals the whole-image decode.
    public func decode(_ latent: Tensor, tileSize: Int?, context: RunContext) throws -> Tensor {
        try decode(latent, tileSize: tileSize, workingLimit: Self.workingLimit, context: context)
    }

    /// Working memory (bytes) each EfficientViT block may hold beyond its input and output when an image is coded
    /// in bands: their attention runs a few heads at a time and their GLUMBConv in row bands above it.
    public static let workingLimit = 1 << 30

    func decode(_ latent: Tensor, tileSize: Int?, workingLimit: Int, context: RunContext) throws -> Tensor {
        try checkLatent(latent)
        let decoder = try decoder()
        let f = downscale
        let (h, w) = (latent.shape[2] * f, latent.shape[3] * f)
        guard let rows = TiledCoding.plan(height: h, width: w, tileSize: tileSize ?? 0, ratio: f) else {
            return try decoder.forward(latent, cancel: context.checkCancelled)
        }
        let head = try decoder.head(latent, limit: workingLimit, cancel: context.checkCancelled)
        let (scale, halo) = decoder.tailGeometry
        // Bands at least 4 margins tall keep the recomputed margins under ~50 % of the work.
        return try TiledCoding.bands(head, unitsPerBand: Swift.max(rows / scale, 4 * halo), halo: halo, inRowsPerUnit: 1,
                                     outRowsPerUnit: scale, cancel: context.checkCancelled) { band in
            decoder.tail(band) {}
        }
    }

    /// Encodes images in [-1, 1] to raw latents; `tileSize` as for `decode` (here the local stages before the first
    /// attention block run in bands, the rest whole).
    public func encode(_ image: Tensor, tileSize: Int?, context: RunContext) throws -> Tensor {
        try encode(image, tileSize: tileSize, workingLimit: Self.workingLimit, context: context)
    }

    func encode(_ image: Tensor, tileSize: Int?, workingLimit: Int, context: RunContext) throws -> Tensor {
        try checkImage(image)
        let encoder = try encoder()
        guard let rows = TiledCoding.plan(height: image.shape[2], width: image.shape[3], tileSize: tileSize ?? 0,
                                          ratio: downscale) else {
            return try encoder.forward(image, cancel: context.checkCancelled)
        }
        let (scale, halo) = encoder.headGeometry
        let head = try TiledCoding.bands(image, unitsPerBand: Swift.max(rows / scale, 4 * halo), halo: halo, inRowsPerUnit: scale,
                                         outRowsPerUnit: 1, cancel: context.checkCancelled) { band in
            encoder.head(band) {}
        }
        return try encoder.tail(head, limit: workingLimit, cancel: context.checkCancelled)
    }

    /// The band height (image pixels) `decode`/`encode` use for `height × width`, or nil when they run whole.
    public static func bandRows(height: Int, width: Int, tileSize: Int, ratio: Int) -> Int? {
        TiledCoding.plan(height: height, width: width, tileSize: tileSize, ratio: ratio)
    }

    /// diffusers `tiled_decode` with `tile_sample_min = tile` and `tile_sample_stride = stride` (image pixels,
    /// multiples of the compression ratio).
    public func tiledDecode(_ latent: Tensor, tile: Int, stride: Int, context: RunContext? = nil) throws -> Tensor {
        try checkLatent(latent)
        try checkTiling(tile: tile, stride: stride)
        let decoder = try decoder()
        let f = downscale
        return try TiledCoding.run(latent, tileIn: tile / f, strideIn: stride / f, blend: tile - stride,
                                   strideOut: stride, padTo: 1,
                                   outSize: (latent.shape[2] * f, latent.shape[3] * f), context: context) { decoder($0) }
    }

    /// diffusers `tiled_encode` with `tile_sample_min = tile` and `tile_sample_stride = stride` (image pixels).
    public func tiledEncode(_ image: Tensor, tile: Int, stride: Int, context: RunContext? = nil) throws -> Tensor {
        try checkImage(image)
        try checkTiling(tile: tile, stride: stride)
        let encoder = try encoder()
        let f = downscale
        return try TiledCoding.run(image, tileIn: tile, strideIn: stride, blend: tile / f - stride / f,
                                   strideOut: stride / f, padTo: f,
                                   outSize: (image.shape[2] / f, image.shape[3] / f), context: context) { encoder($0) }
    }

    func checkTiling(tile: Int, stride: Int) throws {
        let f = downscale
        guard tile > 0, stride > 0, stride <= tile, tile % f == 0, stride % f == 0 else {
            throw DCAEInputError(description: "tile \(tile) and stride \(stride) must be positive multiples of \(f) "
                                 + "with stride ≤ tile")
        }
    }

    func checkLatent(_ z: Tensor) throws {
        guard z.rank == 4, z.shape[1] == latentChannels, z.shape[0] > 0, z.shape[2] > 0, z.shape[3] > 0 else {
            throw DCAEInputError(description: "latent must be [B, \(latentChannels), h, w] for this autoencoder "
                                 + "(latent_channels \(latentChannels)), got \(z.shape)")
        }
    }

    func checkImage(_ x: Tensor) throws {
        let f = downscale
        guard x.rank == 4, x.shape[1] == config.inChannels, x.shape[0] > 0, x.shape[2] > 0, x.shape[3] > 0 else {
            throw DCAEInputError(description: "image must be [B, \(config.inChannels), H, W], got \(x.shape)")
        }
        guard x.shape[2] % f == 0 && x.shape[3] % f == 0 else {
            throw DCAEInputError(description: "image size \(x.shape[3])×\(x.shape[2]) must be a multiple of \(f) on "
                                 + "both sides for this autoencoder; resize or crop it first (e.g. image.resize)")
        }
    }
}
