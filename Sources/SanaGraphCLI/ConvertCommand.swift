import ArgumentParser
import Foundation
import GraphRuntime
import LinearDiT
import Safetensors

/// `sanagraph convert CHECKPOINT --out FOLDER`: a diffusers-layout folder from a SANA transformer kept as one file.
struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Write a diffusers folder from an NVlabs .pth or single-file safetensors SANA transformer.",
        discussion: """
            The checkpoint is read without Python and without running anything from it (a .pth is a zip whose \\
            pickle may only describe tensors). Keys are mapped as diffusers' convert_sana_to_diffusers.py does and \\
            the config is inferred from the weights' shapes; the weights keep their dtype. Writes FOLDER/transformer \\
            and FOLDER/scheduler (SCMScheduler for Sana-Sprint, else Flow-DPM-Solver with flow_shift 6 at 4096 px \\
            and 3 otherwise); with --base, text_encoder/, tokenizer/ and vae/ are linked from a diffusers SANA folder \\
            and model_index.json is written, so the graphs (and diffusers) can load FOLDER.

            Examples:
              sanagraph convert Sana_1600M_1024px_BF16.pth --out /data/sana16 --base /data/Sana_1600M_1024px_BF16_diffusers
              sanagraph convert Sana_1600M_4Kpx_BF16.pth --image-size 4096 --out /data/sana4k --base /data/sana16
              sanagraph convert sana_sprint_comfy.safetensors --out /data/sprint --base /data/Sana_Sprint_1.6B_1024px_diffusers

            Exit codes: 0 success, 4 the checkpoint is unreadable, refused or does not match a SANA transformer, \\
            6 FOLDER exists or cannot be written; usage errors exit 2.
            """)

    @Argument(help: "A .pth (torch.save zip) or .safetensors file holding one SANA transformer.")
    var checkpoint: String

    @Option(help: "The diffusers folder to create (must not exist).")
    var out: String

    @Option(help: ArgumentHelp("Training resolution: 512, 1024, 2048 or 4096 px (sets sample_size, the 2K/4K position "
                               + "embedding and flow_shift); default: from a stored pos_embed, else 1024.",
                               valueName: "px"))
    var imageSize: Int?

    @Option(help: ArgumentHelp("A JSON file of diffusers transformer config keys that win over the inferred ones.",
                               valueName: "file"))
    var config: String?

    @Option(help: ArgumentHelp("A diffusers SANA folder whose text_encoder/, tokenizer/ and vae/ are linked in.",
                               valueName: "folder"))
    var base: String?

    func validate() throws {
        if let imageSize, ![512, 1024, 2048, 4096].contains(imageSize) {
            throw ValidationError("--image-size must be 512, 1024, 2048 or 4096")
        }
    }

    func run() throws {
        let fm = FileManager.default
        guard !fm.fileExists(atPath: out) else {
            Console.error("\(out): already exists; give a new folder to --out")
            throw ExitCode(ErrorCategory.io.exitCode)
        }
        let converted: SanaCheckpointFile.Converted
        do {
            let overrides = try config.map(SanaCheckpointFile.overrides(path:)) ?? [:]
            converted = try SanaCheckpointFile(path: checkpoint).convert(imageSize: imageSize, overrides: overrides)
            try converted.validate(path: checkpoint)
            if let base {
                for sub in ["text_encoder", "tokenizer", "vae"] where !fm.fileExists(atPath: base + "/" + sub) {
                    throw ModelFolderError.invalidConfig(path: base, message: "--base has no \(sub)/")
                }
            }
        } catch {
            Console.error("\(error)")
            throw exitStatus(for: error)
        }
        let variant = SanaVariant(config: converted.config)
        // Everything goes into a sibling temporary folder renamed at the end: no half-written FOLDER.
        let temporary = out + ".partial-\(getpid())"
        do {
            try? fm.removeItem(atPath: temporary)
            try fm.createDirectory(atPath: temporary + "/transformer", withIntermediateDirectories: true)
            try fm.createDirectory(atPath: temporary + "/scheduler", withIntermediateDirectories: true)
            var configJSON = converted.configJSON
            configJSON["_diffusers_version"] = "0.42.1"
            try writeJSON(configJSON, to: temporary + "/transformer/config.json")
            try SafetensorsWriter.write(entries: converted.tensors.mapValues { .raw($0) },
                                        metadata: ["format": "pt", "source": (checkpoint as NSString).lastPathComponent],
                                        to: temporary + "/transformer/diffusion_pytorch_model.safetensors")
            let sprint = variant.family == .sprint
            try writeJSON(sprint ? Self.scmScheduler : Self.dpmScheduler(shift: variant.defaultFlowShift ?? 3),
                          to: temporary + "/scheduler/scheduler_config.json")
            if let base {
                let absolute = URL(fileURLWithPath: base).standardizedFileURL.path
                for sub in ["text_encoder", "tokenizer", "vae"] {
                    try fm.createSymbolicLink(atPath: temporary + "/" + sub, withDestinationPath: absolute + "/" + sub)
                }
                try writeJSON(Self.modelIndex(sprint: sprint), to: temporary + "/model_index.json")
            }
            try fm.moveItem(atPath: temporary, toPath: out)
        } catch {
            try? fm.removeItem(atPath: temporary)
            Console.error("\(out): cannot write the converted folder: \(error)")
            throw ExitCode(ErrorCategory.io.exitCode)
        }
        Console.out("""
            \(checkpoint): \(converted.layout), \(converted.tensors.count) tensors → \(out)
            family: \(variant.name); run it with \(variant.graph)\(base == nil ? " (add text_encoder/, tokenizer/ and vae/ from a diffusers SANA folder, or use --base)" : "")

            """)
    }

    private func writeJSON(_ object: [String: Any], to path: String) throws {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        try (data + Data("\n".utf8)).write(to: URL(fileURLWithPath: path))
    }

    /// What convert_sana_to_diffusers.py writes for Sana-Sprint.
    static var scmScheduler: [String: Any] {
        ["_class_name": "SCMScheduler", "num_train_timesteps": 1000, "prediction_type": "trigflow", "sigma_data": 0.5]
    }

    /// SANA's Flow-DPM-Solver (`DPMSolverMultistepScheduler(flow_shift=…, use_flow_sigmas=True,
    /// prediction_type="flow_prediction")`), with the keys SanaGraph and diffusers read.
    static func dpmScheduler(shift: Double) -> [String: Any] {
        ["_class_name": "DPMSolverMultistepScheduler", "algorithm_type": "dpmsolver++", "beta_end": 0.02,
         "beta_schedule": "linear", "beta_start": 0.0001, "euler_at_final": false, "final_sigmas_type": "zero",
         "flow_shift": shift, "lower_order_final": true, "num_train_timesteps": 1000,
         "prediction_type": "flow_prediction", "solver_order": 2, "solver_type": "midpoint", "thresholding": false,
         "use_flow_sigmas": true]
    }

    static func modelIndex(sprint: Bool) -> [String: Any] {
        ["_class_name": sprint ? "SanaSprintPipeline" : "SanaPipeline", "_diffusers_version": "0.42.1",
         "scheduler": ["diffusers", sprint ? "SCMScheduler" : "DPMSolverMultistepScheduler"],
         "text_encoder": ["transformers", "Gemma2Model"], "tokenizer": ["transformers", "GemmaTokenizerFast"],
         "transformer": ["diffusers", "SanaTransformer2DModel"], "vae": ["diffusers", "AutoencoderDC"]]
    }
}
