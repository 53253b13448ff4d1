import Foundation
import SanaGraphKit
import DiffusionModels
import Tensors

/// `image.resize`: Pillow-compatible resampling by a factor or to a size.
public struct ImageResize: Node {
    public static let descriptor = NodeDescriptor(
        typeName: "image.resize", version: 1,
        summary: "Resize images like PIL's Image.resize (nearest, bilinear, bicubic, lanczos3), by factor or to a size",
        inputs: [InputSpec("image", .image, doc: "[B, 3, H, W] in [0, 1]")],
        outputs: [OutputSpec("image", .image)],
        params: [
            ParamSpec("mode", .choice(ResampleFilter.allCases.map(\.rawValue)), default: .string("lanczos3"),
                      doc: "resampling filter"),
            ParamSpec("scale", .float, default: .float(0), min: 0, max: 64,
                      doc: "factor for both sides (used when width and height are 0)"),
            ParamSpec("width", .int, default: .int(0), min: 0, max: 65536,
                      doc: "output width; 0 = from height keeping the aspect ratio, or from scale"),
            ParamSpec("height", .int, default: .int(0), min: 0, max: 65536,
                      doc: "output height; 0 = from width keeping the aspect ratio, or from scale"),
        ])

    public init() {}

    public func validate(params: ParamValues) -> [String] {
        let scale = params["scale"].map { if case .float(let v) = $0 { v } else if case .int(let v) = $0 { Double(v) } else { 0 } } ?? 0
        let width = params["width"].flatMap { if case .int(let v) = $0 { v } else { nil } } ?? 0
        let height = params["height"].flatMap { if case .int(let v) = $0 { v } else { nil } } ?? 0
        if scale <= 0 && width <= 0 && height <= 0 { return ["give a scale > 0, or a width and/or height"] }
        return []
    }

    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        let image = try inputs.tensor("image")
        guard image.rank == 4, image.shape[2] > 0, image.shape[3] > 0 else {
            throw NodeError.invalidInput(node: context.nodeID, message: "input 'image' must be [B, C, H, W], got \(image.shape)")
        }
        let (h, w) = (image.shape[2], image.shape[3])
        let size = try Self.outputSize(height: h, width: w, scale: params.double("scale"), targetWidth: params.int("width"),
                                       targetHeight: params.int("height"), node: context.nodeID)
        let filter = ResampleFilter(rawValue: params.string("mode")) ?? .lanczos3
        return ["image": .image(Resample.resize(image, height: size.height, width: size.width, filter: filter))]
    }

    /// The output size: explicit width/height (one of them may follow the aspect ratio), else `round(side · scale)`.
    public static func outputSize(height h: Int, width w: Int, scale: Double, targetWidth: Int, targetHeight: Int,
                                  node: String = "") throws -> (height: Int, width: Int) {
        var outW = targetWidth, outH = targetHeight
        if outW <= 0 && outH <= 0 {
            guard scale > 0 else { throw NodeError.invalidParam(node: node, param: "scale", message: "give a scale > 0, or a width and/or height") }
            outW = Int((Double(w) * scale).rounded())
            outH = Int((Double(h) * scale).rounded())
        } else if outW <= 0 {
            outW = Int((Double(w) * Double(outH) / Double(h)).rounded())
        } else if outH <= 0 {
            outH = Int((Double(h) * Double(outW) / Double(w)).rounded())
        }
        outW = max(outW, 1)
        outH = max(outH, 1)
        guard outW <= 65536, outH <= 65536 else {
            throw NodeError.invalidParam(node: node, param: "scale", message: "output \(outW)x\(outH) is larger than 65536 on a side")
        }
        return (outH, outW)
    }
}

/// `upscale.load`: an ESRGAN-family upscaler from a safetensors file.
public struct UpscaleLoad: Node {
    public static let descriptor = NodeDescriptor(
        typeName: "upscale.load", version: 1,
        summary: "Load ESRGAN / Real-ESRGAN RRDBNet weights (x4, x2, x1; architecture inferred from the file)",
        outputs: [OutputSpec("model", .upscaleModel)],
        params: [ParamSpec("path", .path, doc: "a .safetensors file with RRDBNet weights"), .precision])

    public init() {}

    public func fingerprint(params: ParamValues) throws -> String? {
        let path = params.string("path")
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else {
            throw ModelFolderError.weights(path: path, message: "upscaler weights not found")
        }
        let size = (attributes[.size] as? NSNumber)?.intValue ?? -1
        let mtime = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        return "\(URL(fileURLWithPath: path).standardizedFileURL.path)|\(size)|\(mtime)"
    }

    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        let model = try RRDBNetLoader.load(path: params.string("path"), precision: params.precision())
        let c = model.config
        context.logger.info("RRDBNet x\(c.scale): \(c.numBlock) blocks, \(c.numFeat) features, growth \(c.numGrowCh)")
        context.notePrecision(params.precision()) { "convolutions on \(model.kernel)" }
        return ["model": .upscaler(model)]
    }
}

/// `upscale.apply`: runs an upscaler over images, tiled with overlap so memory stays bounded.
public struct UpscaleApply: Node {
    public static let descriptor = NodeDescriptor(
        typeName: "upscale.apply", version: 1,
        summary: "Upscale images with an ESRGAN-family model, in overlapping tiles",
        inputs: [InputSpec("model", .upscaleModel), InputSpec("image", .image, doc: "[B, 3, H, W] in [0, 1]")],
        outputs: [OutputSpec("image", .image, doc: "[B, 3, H·s, W·s] in [0, 1]")],
        params: [
            ParamSpec("tile", .int, default: .int(256), min: 0, max: 4096,
                      doc: "tile size in input pixels (0 = never tile); memory grows with its square"),
            ParamSpec("overlap", .int, default: .int(16), min: 0, max: 512,
                      doc: "context pixels added around each tile and cropped away, hiding seams"),
        ])

    public init() {}

    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        let model = try inputs.upscaler("model")
        let image = try inputs.tensor("image")
        guard image.rank == 4, image.shape[1] == 3, image.shape[2] > 0, image.shape[3] > 0 else {
            throw NodeError.invalidInput(node: context.nodeID, message: "input 'image' must be [B, 3, H, W], got \(image.shape)")
        }
        let out = try model.upscale(image, tileSize: params.int("tile"), overlap: params.int("overlap"), context: context)
        return ["image": .image(out)]
    }
}
