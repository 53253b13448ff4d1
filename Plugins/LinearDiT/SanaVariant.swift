import Foundation

/// Which member of the SANA family a transformer config describes, read from its keys (never from file or
/// folder names), with what a pipeline needs to run it as diffusers does: the graph, native size, binning table
/// and default flow shift (sana-architecture.md §3.1 and §6; `convert_sana_to_diffusers.py`).
public struct SanaVariant: Sendable, Equatable {
    public enum Family: String, Sendable, Equatable {
        /// SANA 1.0 at 512/1024 px: no PE, no qk-norm.
        case sana = "SANA 1.0"
        /// SANA 1.5: RMS qk-norm across heads in self- and cross-attention.
        case sana15 = "SANA 1.5"
        /// SANA 2K / 4K: 2-D sin-cos positional embedding (`interpolation_scale`).
        case sanaHighResolution = "SANA 2K/4K"
        /// Sana-Sprint: guidance embedding, sampled by SCM/TrigFlow in 1–4 steps.
        case sprint = "Sana-Sprint"
    }

    public let family: Family
    /// "SANA 1.5 4.8B", "Sana-Sprint 0.6B", "SANA 4K 1.6B" … (the size class is the nearest released one).
    public let name: String
    /// Parameters of the transformer this config describes.
    public let parameters: Int
    /// `sample_size` × the VAE factor: diffusers' default height and width.
    public let nativePixels: Int
    /// The aspect-ratio bin table diffusers picks by `sample_size` (`ASPECT_RATIO_1024_BIN` …), nil when none.
    public let binTable: String?
    /// The shipped graph that samples it as diffusers does.
    public let graph: String
    /// The flow shift diffusers' conversion writes for this size (6.0 at 4K, else 3.0); Sprint has none.
    public let defaultFlowShift: Double?
    /// Things a user should know (dtypes, PE, which pipeline).
    public let notes: [String]

    /// Classifies `config`; `vaeFactor` is the sibling VAE's spatial factor (32 for DC-AE f32).
    public init(config c: SanaTransformerConfig, vaeFactor: Int = 32) {
        parameters = SanaTransformerKeys.expected(c).values.reduce(0) { $0 + $1.reduce(1, *) }
        nativePixels = c.sampleSize * vaeFactor
        // The tables are in pixels for a 32× VAE: with another factor they don't fit the model's native size.
        binTable = vaeFactor != 32 ? nil : [16: "ASPECT_RATIO_512_BIN", 32: "ASPECT_RATIO_1024_BIN",
                                            64: "ASPECT_RATIO_2048_BIN", 128: "ASPECT_RATIO_4096_BIN"][c.sampleSize]
        let size = Self.sizeClass(parameters)
        var notes: [String] = []
        if c.guidanceEmbeds {
            family = .sprint
            name = "Sana-Sprint \(size)"
            graph = "Graphs/sprint.yaml"
            defaultFlowShift = nil
            notes.append("distilled for 1-4 steps: SCMScheduler (TrigFlow), the guidance scale (× "
                + "\(c.guidanceEmbedsScale)) embedded in the model, no negative prompt (diffusers' SanaSprintPipeline)")
            if c.sampleSize != 32 {
                notes.append("SanaSprintPipeline only bins sample_size 32; this one has \(c.sampleSize)")
            }
        } else if c.interpolationScale != nil && c.sampleSize >= 64 {
            family = .sanaHighResolution
            name = "SANA \(c.sampleSize >= 128 ? "4K" : "2K") \(size)"
            graph = "Graphs/text2img.yaml"
            defaultFlowShift = c.sampleSize >= 128 ? 6.0 : 3.0
            notes.append("2-D sin-cos position embedding, interpolation_scale \(c.interpolationScale!), "
                + "recomputed for every latent size")
        } else if c.usesQKNorm {
            family = .sana15
            name = "SANA 1.5 \(size)"
            graph = "Graphs/text2img.yaml"
            defaultFlowShift = 3.0
            notes.append("RMS qk-norm across heads in self- and cross-attention")
        } else {
            family = .sana
            name = "SANA 1.0 \(size)"
            graph = "Graphs/text2img.yaml"
            defaultFlowShift = 3.0
        }
        if c.interpolationScale != nil && family != .sanaHighResolution {
            notes.append("2-D sin-cos position embedding, interpolation_scale \(c.interpolationScale!)")
        }
        if c.timestepScale != 1 {
            notes.append("timestep_scale \(c.timestepScale): the flow samplers multiply their timesteps by it")
        }
        self.notes = notes
    }

    /// The nearest released size: 0.6B, 1.6B or 4.8B (else the count itself).
    static func sizeClass(_ parameters: Int) -> String {
        let billions = Double(parameters) / 1e9
        for (label, value) in [("0.6B", 0.6), ("1.6B", 1.6), ("4.8B", 4.7)] where abs(billions - value) / value < 0.1 {
            return label
        }
        return billions >= 0.1 ? String(format: "%.2fB", billions) : String(format: "%.1fM", billions * 1000)
    }
}
