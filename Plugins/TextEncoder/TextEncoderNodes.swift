import CUDA
import Foundation
import SanaGraphKit
import DiffusionModels
import Safetensors
import Tensors

/// `text_encoder.load`: loads SANA's Gemma-2 text encoder (`text_encoder/`) and its tokenizer (`tokenizer/`).
public struct TextEncoderLoad: Node {
    public static let descriptor = NodeDescriptor(
        typeName: "text_encoder.load", version: 1,
        summary: "Load SANA's Gemma-2 text encoder from a diffusers text_encoder/ folder and its tokenizer",
        outputs: [OutputSpec("encoder", .textEncoderModel, doc: "Gemma2Model (CPU: linear layers prepared for this CPU at `precision`; CUDA: bf16 weights on the GPU) + GemmaTokenizer")],
        params: [
            ParamSpec("path", .path, doc: "the text_encoder/ folder holding config.json and the safetensors weights "
                      + "(single file or sharded with an index; F32/F16/BF16)"),
            ParamSpec("tokenizer", .path, default: .string(""),
                      doc: "a tokenizer/ folder holding tokenizer.json (or the file); empty = the sibling "
                      + "folder <path>/../tokenizer"),
            ParamSpec("device", .string, default: .string("cpu"),
                      doc: "where the model runs: cpu, cuda or cuda:N (NVIDIA GPU N, bf16; docs/cuda.md)"),
            .precision,
        ])

    public init() {}

    /// The tokenizer path the params name (default: the `tokenizer/` folder next to `path`).
    static func tokenizerPath(_ params: ParamValues) -> String {
        if let t = params.optionalString("tokenizer") { return t }
        let path = params.string("path")
        return Paths.join(Paths.directory(of: path), "tokenizer")
    }

    static func tokenizerFile(_ path: String) -> String {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            return Paths.join(path, "tokenizer.json")
        }
        return path
    }

    public func validate(params: ParamValues) -> [String] {
        var problems: [String] = []
        if params.optionalString("path") == nil { problems.append("path must not be empty") }
        let device = params.optionalString("device") ?? "cpu"
        if ComputeDevice(parsing: device) == nil {
            problems.append("device must be \(ComputeDevice.spellings), got '\(device)'")
        }
        return problems
    }

    /// Fingerprints config.json, every weight file and tokenizer.json, so edits invalidate cached results.
    public func fingerprint(params: ParamValues) throws -> String? {
        let path = params.string("path")
        let tokenizer = Self.tokenizerFile(Self.tokenizerPath(params))
        let weights = try ModelFolder<Gemma2Config>.fingerprint(path: path)
        do {
            return weights + "\n" + (try FileFingerprint.fast(tokenizer))
        } catch {
            throw TokenizerFile.unreadable(path: tokenizer, reason: "\(error)")
        }
    }

    /// The weights as fp32 (the embedding table stays mapped, so this is an upper bound).
    public func estimateMemory(params: ParamValues, inputs: NodeInputs?) -> Int? {
        ModelFolder<Gemma2Config>.fp32WeightBytes(path: params.string("path"))
    }

    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        let path = params.string("path")
        let tokenizerPath = Self.tokenizerPath(params)
        // The tokenizer first: it is small, so a wrong path fails before gigabytes are read.
        let tokenizer = try GemmaTokenizer(contentsOf: tokenizerPath)
        switch ComputeDevice(parsing: params.optionalString("device") ?? "cpu") ?? .cpu {
        case .cpu:
            let model = try Gemma2Model.load(folder: path, precision: params.precision())
            context.logger.info("loaded Gemma-2 text encoder (\(model.config.numHiddenLayers) layers, hidden \(model.config.hiddenSize)) from \(path), tokenizer \(tokenizer.path)")
            context.notePrecision(params.precision()) { "linear layers on \(model.kernel)" }
            return ["encoder": .textEncoder(SanaTextEncoder(model: model, tokenizer: tokenizer))]
        case .cuda(let index):
            let model = try Gemma2ModelCUDA.load(folder: path, device: index)
            let placement = "\(model.context.name) (cuda:\(index), \(model.deviceBytes >> 20) MiB of bf16 weights)"
            context.logger.info("loaded Gemma-2 text encoder (\(model.config.numHiddenLayers) layers, hidden \(model.config.hiddenSize)) from \(path) onto \(placement), tokenizer \(tokenizer.path)")
            return ["encoder": .textEncoder(SanaTextEncoder(model: model, tokenizer: tokenizer))]
        }
    }
}

/// `text.encode`: prompts → conditioning, as diffusers' `SanaPipeline.encode_prompt`.
public struct TextEncode: Node {
    public static let descriptor = NodeDescriptor(
        typeName: "text.encode", version: 1,
        summary: "Encode prompts into SANA conditioning (embeddings [B, L, C] + mask [B, L]) as SanaPipeline.encode_prompt",
        inputs: [InputSpec("encoder", .textEncoderModel)],
        outputs: [OutputSpec("conditioning", .conditioning,
                             doc: "embeddings [B, max_sequence_length, C] and 0/1 mask [B, max_sequence_length]")],
        params: [
            ParamSpec("text", .string, doc: "the prompt (lowercased and stripped as diffusers does); with "
                      + "split_lines, one prompt per line"),
            ParamSpec("instruction", .choice(["default", "none", "custom"]), default: .string("default"),
                      doc: "'default' = diffusers' complex human instruction, 'none' = no instruction (as diffusers "
                      + "encodes negative prompts), 'custom' = the text of custom_instruction, prefixed verbatim"),
            ParamSpec("custom_instruction", .string, default: .string(""),
                      doc: "the instruction lines used when instruction is 'custom' (must be empty otherwise)"),
            ParamSpec("max_sequence_length", .int, default: .int(300), min: 1, max: 8192,
                      doc: "tokens kept per prompt (L)"),
            ParamSpec("split_lines", .bool, default: .bool(false),
                      doc: "treat every non-blank line of text as one prompt of a batch (B = number of lines)"),
            ParamSpec("skip_padding", .bool, default: .bool(false),
                      doc: "run the text encoder only up to the longest prompt's last token and leave the padding "
                      + "rows (mask 0) zero; the denoiser masks them out, so pictures do not change, and short "
                      + "prompts encode several times faster (off: every row as diffusers computes it)"),
        ])

    public init() {}

    /// The prompts the params describe.
    static func prompts(_ params: ParamValues) -> [String] {
        let text = params.string("text")
        guard case .bool(true)? = params["split_lines"] else { return [text] }
        return text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            .filter { !PythonString.strip($0).isEmpty }
    }

    static func instruction(_ params: ParamValues) -> PromptInstruction {
        switch params.optionalString("instruction") {
        case "none"?: return .none
        case "custom"?: return .custom(params.optionalString("custom_instruction") ?? "")
        default: return .default
        }
    }

    public func validate(params: ParamValues) -> [String] {
        var problems: [String] = []
        if case .bool(true)? = params["split_lines"], Self.prompts(params).isEmpty {
            problems.append("text holds no prompt line (split_lines is on and every line is blank)")
        }
        let custom = params.optionalString("custom_instruction")
        switch params.optionalString("instruction") {
        case "custom"?:
            if custom == nil { problems.append("instruction 'custom' needs the text in custom_instruction") }
        case let mode:
            if custom != nil {
                problems.append("custom_instruction is set but instruction is '\(mode ?? "default")'; set instruction: "
                                + "custom to use it, or remove custom_instruction")
            }
        }
        return problems
    }

    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        let encoder = try inputs.textEncoder("encoder")
        let prompts = Self.prompts(params)
        let length = params.int("max_sequence_length")
        let conditioning = try encoder.encode(prompts: prompts, instruction: Self.instruction(params),
                                              maxSequenceLength: length,
                                              skipPadding: params.bool("skip_padding"), context: context)
        return ["conditioning": .conditioning(conditioning)]
    }
}
