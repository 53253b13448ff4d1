import Foundation
import SanaGraphKit
import DiffusionModels
import Tensors

extension SocketType {
    /// An inpainting mask on the latent grid: [1, 1, h, w] fp32 in [0, 1], 1 = repaint, 0 = keep.
    public static let latentMask = SocketType(
        "flow.LatentMask", storing: Tensor.self,
        doc: "inpainting mask on the latent grid [1, 1, h, w] in [0, 1] (1 = repaint, 0 = keep the source)")
}

/// How a mask picture becomes a latent-grid mask (docs/workflows.md, "Inpainting").
public enum LatentMask {
    /// Luma of an image [1, 3, H, W] in [0, 1] (ITU-R 601: 0.299 R + 0.587 G + 0.114 B, as PIL's "L"),
    /// average-pooled to [1, 1, h, w] exactly as torch's `adaptive_avg_pool2d` (cell i covers pixels
    /// floor(i·H/h) ..< ceil((i+1)·H/h)), then blurred with a Gaussian of sigma `feather` cells, then inverted.
    public static func make(image: Tensor, height h: Int, width w: Int, feather: Double, invert: Bool) -> Tensor {
        precondition(image.rank == 4 && image.shape[1] == 3 && h > 0 && w > 0)
        let H = image.shape[2], W = image.shape[3], plane = H * W
        let px = image.scalars
        var luma = [Double](repeating: 0, count: plane)
        for i in 0..<plane {
            luma[i] = 0.299 * Double(px[i]) + 0.587 * Double(px[plane + i]) + 0.114 * Double(px[2 * plane + i])
        }
        var m = [Double](repeating: 0, count: h * w)
        for y in 0..<h {
            let y0 = y * H / h, y1 = ((y + 1) * H + h - 1) / h
            for x in 0..<w {
                let x0 = x * W / w, x1 = ((x + 1) * W + w - 1) / w
                var sum = 0.0
                for yy in y0..<y1 { for xx in x0..<x1 { sum += luma[yy * W + xx] } }
                m[y * w + x] = sum / Double((y1 - y0) * (x1 - x0))
            }
        }
        if feather > 0 { m = blur(m, height: h, width: w, sigma: feather) }
        return Tensor(shape: [1, 1, h, w], values: m.map { Float(invert ? 1 - $0 : $0) })
    }

    /// Taps −r…r of the feathering Gaussian, r = ⌈3σ⌉, normalised to sum 1.
    static func kernel(sigma: Double) -> [Double] {
        let r = Int((3 * sigma).rounded(.up))
        let k = (-r...r).map { exp(-Double($0 * $0) / (2 * sigma * sigma)) }
        let total = k.reduce(0, +)
        return k.map { $0 / total }
    }

    /// Separable Gaussian blur with replicated edges (rows, then columns).
    static func blur(_ m: [Double], height h: Int, width w: Int, sigma: Double) -> [Double] {
        let k = kernel(sigma: sigma), r = k.count / 2
        var rows = [Double](repeating: 0, count: m.count)
        for y in 0..<h {
            for x in 0..<w {
                var s = 0.0
                for (j, kj) in k.enumerated() { s += kj * m[y * w + min(max(x + j - r, 0), w - 1)] }
                rows[y * w + x] = s
            }
        }
        var out = [Double](repeating: 0, count: m.count)
        for y in 0..<h {
            for x in 0..<w {
                var s = 0.0
                for (j, kj) in k.enumerated() { s += kj * rows[min(max(y + j - r, 0), h - 1) * w + x] }
                out[y * w + x] = s
            }
        }
        return out
    }
}

/// `latent.mask`: a mask picture (white = repaint) → an inpainting mask on the grid of a latent.
public struct LatentMaskNode: Node {
    public static let descriptor = NodeDescriptor(
        typeName: "latent.mask", version: 1,
        summary: "Inpainting mask on the latent grid from a mask picture (white = repaint), optionally feathered",
        inputs: [
            InputSpec("image", .image,
                      doc: "the mask picture [1, 3, H, W] in [0, 1] (image.load): white = repaint, black = keep; any "
                          + "size covering the same frame as the source picture (it is averaged per latent cell)"),
            InputSpec("latent", .latent, doc: "the latent whose grid the mask is made for (dcae.encode of the source)"),
        ],
        outputs: [OutputSpec("mask", .latentMask, doc: "[1, 1, h, w] in [0, 1] for the samplers' 'mask' input")],
        params: [
            ParamSpec("feather", .float, default: .float(0), min: 0, max: 16,
                      doc: "Gaussian blur of the mask, sigma in latent cells (0 = none): soft borders; the repainted "
                          + "area grows by up to ceil(3 × feather) cells"),
            ParamSpec("invert", .bool, default: .bool(false), doc: "repaint the black area instead"),
        ])

    public init() {}

    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        let image = try inputs.tensor("image")
        let latent = try inputs.tensor("latent")
        guard image.rank == 4, image.shape[0] == 1, image.shape[1] == 3, image.shape[2] > 0, image.shape[3] > 0 else {
            throw NodeError.invalidInput(node: context.nodeID,
                                         message: "image has shape \(image.shape); expected one picture [1, 3, H, W]")
        }
        guard latent.rank == 4 else {
            throw NodeError.invalidInput(node: context.nodeID,
                                         message: "latent has shape \(latent.shape); expected [B, C, h, w]")
        }
        let (h, w) = (latent.shape[2], latent.shape[3])
        guard image.shape[2] >= h, image.shape[3] >= w else {
            throw NodeError.invalidInput(node: context.nodeID, message: "the mask picture (\(image.shape[3])×"
                + "\(image.shape[2]) px) is smaller than the latent grid (\(w)×\(h) cells); use a mask the size of "
                + "the source picture")
        }
        let mask = LatentMask.make(image: image, height: h, width: w, feather: params.double("feather"),
                                   invert: params.bool("invert"))
        return ["mask": Value(.latentMask, mask)]
    }
}
