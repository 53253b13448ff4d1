import SanaGraphKit
import Tensors

/// `image.load`: reads a PNG into an image [1, 3, H, W] in [0, 1].
public struct ImageLoad: Node {
    public static let defaultMaxPixels = 100_000_000

    public static let descriptor = NodeDescriptor(
        typeName: "image.load", version: 1,
        summary: "Load a PNG (8/16-bit, gray, RGB, RGBA, palette) as an RGB image in [0, 1]",
        outputs: [OutputSpec("image", .image, doc: "[1, 3, H, W] in [0, 1]; alpha is dropped")],
        params: [
            ParamSpec("path", .path, doc: "the PNG file (relative paths are relative to the working directory)"),
            ParamSpec("max_pixels", .int, default: .int(defaultMaxPixels), min: 1,
                      doc: "refuse images with more pixels than this (decompression-bomb guard)"),
        ])

    public init() {}

    public func fingerprint(params: ParamValues) throws -> String? {
        try ImageFiles.fingerprint(params.string("path"))
    }

    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        let image = try Self.load(path: params.string("path"), maxPixels: params.int("max_pixels"))
        return ["image": .image(image)]
    }

    /// Reads the PNG at `path` as an image [1, 3, H, W] in [0, 1].
    public static func load(path: String, maxPixels: Int = defaultMaxPixels) throws -> Tensor {
        try PNGCodec.decode(ImageFiles.readBytes(path), path: path, maxPixels: maxPixels).image
    }
}
