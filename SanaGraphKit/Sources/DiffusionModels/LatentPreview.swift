import Foundation
import SanaGraphKit
import Tensors

/// A linear latent → RGB projection for cheap previews during sampling: rgb[k] = bias[k] + Σ_c weights[k][c]·z[c]
/// per latent cell, z the latent as the denoiser sees it (scaled), rgb in [0, 1] (clamped). Fitted once per
/// autoencoder by tools/fit_latent_preview.py and stored beside its weights as `latent_preview.json`.
public struct LatentPreview: Sendable, Equatable, Codable {
    /// [3][C]
    public var weights: [[Float]]
    /// [3]
    public var bias: [Float]

    /// The file name beside the autoencoder's config.json.
    public static let fileName = "latent_preview.json"

    public init(weights: [[Float]], bias: [Float]) {
        self.weights = weights
        self.bias = bias
    }

    /// Latent channels it projects.
    public var channels: Int { weights.first?.count ?? 0 }

    /// Reads `folder/latent_preview.json`; nil when there is none. A file that is there but malformed is an error
    /// naming it.
    public static func load(folder: String) throws -> LatentPreview? {
        let path = (folder as NSString).appendingPathComponent(fileName)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let data: Data
        switch BoundedFile.read(path, limit: GraphLimits.maxConfigBytes) {
        case .success(let bytes): data = Data(bytes)
        case .failure(let why): throw LatentPreviewError.malformed(path: path, reason: why.description)
        }
        let p: LatentPreview
        do { p = try JSONDecoder().decode(LatentPreview.self, from: data) } catch {
            throw LatentPreviewError.malformed(path: path, reason: "\(error)")
        }
        guard p.weights.count == 3, p.bias.count == 3, p.channels > 0,
              p.weights.allSatisfy({ $0.count == p.channels }),
              (p.weights.joined() + p.bias).allSatisfy(\.isFinite) else {
            throw LatentPreviewError.malformed(path: path, reason: "expected finite weights [3][C] and bias [3]")
        }
        return p
    }

    /// The first latent of `latent` [B, C, h, w] as a picture [1, 3, h, w] in [0, 1] (one pixel per cell).
    public func rgb(_ latent: Tensor) -> Tensor {
        precondition(latent.rank == 4 && latent.shape[1] == channels)
        let plane = latent.shape[2] * latent.shape[3]
        var out = Tensor(uninitialized: [1, 3, latent.shape[2], latent.shape[3]])
        latent.withUnsafeBufferPointer { z in
            out.withUnsafeMutableBufferPointer { o in
                for k in 0..<3 {
                    for p in 0..<plane {
                        var s = bias[k]
                        for c in 0..<channels { s += weights[k][c] * z[c * plane + p] }
                        o[k * plane + p] = min(max(s, 0), 1)
                    }
                }
            }
        }
        return out
    }
}

/// A `latent_preview.json` that cannot be used.
public enum LatentPreviewError: CategorizedError {
    case malformed(path: String, reason: String)

    /// A model folder file: exit 4.
    public var category: ErrorCategory { .modelFile }

    public var description: String {
        switch self {
        case .malformed(let path, let reason):
            return "\(path): not a latent preview projection (\(reason)); delete it or refit it with "
                + "tools/fit_latent_preview.py"
        }
    }
}
