import Foundation
import SanaGraphKit
import Tensors

/// Writes the preview pictures of `sanagraph run --preview N` (docs/cli.md#previews): small PNGs, replaced
/// atomically at each step, never mistaken for a graph's output (their own folder and the `.preview.png` suffix).
public enum PreviewPNG {
    /// The suffix every preview file name ends with.
    public static let suffix = ".preview.png"

    /// The preview file of `nodeID` in `directory` for the graph file `graphFile`: `<graph>-<node>.preview.png`.
    public static func path(directory: String, graphFile: String, nodeID: String) -> String {
        let stem = ((graphFile as NSString).lastPathComponent as NSString).deletingPathExtension
        let safe = { (s: String) in String(s.map { $0.isLetter || $0.isNumber || "-_.".contains($0) ? $0 : "_" }) }
        return Paths.join(directory, "\(safe(stem))-\(safe(nodeID))\(suffix)")
    }

    /// Writes `frame.image` ([1, 3, h, w] in [0, 1]) enlarged by nearest neighbours to at least 256 px on its longer
    /// side, through a temporary file renamed over `path` (a reader never sees a partial file), with an iTXt chunk
    /// `sanagraph-preview` = "node N: step k of n".
    public static func write(_ frame: PreviewFrame, to path: String) throws {
        let image = frame.image
        precondition(image.rank == 4 && image.shape[0] == 1 && image.shape[1] == 3)
        let (h, w) = (image.shape[2], image.shape[3])
        let factor = max(1, min(32, 256 / max(1, max(h, w))))
        let (H, W) = (h * factor, w * factor)
        let src = image.scalars
        var big = [Float](repeating: 0, count: 3 * H * W)
        for c in 0..<3 {
            for y in 0..<H {
                for x in 0..<W { big[(c * H + y) * W + x] = src[(c * h + y / factor) * w + x / factor] }
            }
        }
        let text = [(keyword: "sanagraph-preview",
                     text: "node \(frame.nodeID): step \(frame.step) of \(frame.total) (a preview, not the output)")]
        let bytes = try big.withUnsafeBufferPointer {
            try PNGCodec.encode($0, width: W, height: H, bits: 8, text: text, path: path)
        }
        _ = try ImageSave.write(bytes, to: path, collision: .overwrite)
    }
}
