import Foundation
import GraphRuntime
import LinearDiT
import Safetensors

/// `sanagraph inspect MODEL_FOLDER`: what a diffusers-layout SANA folder holds and how to run it. Everything is
/// read from config.json files and safetensors headers (no weights are loaded); the family comes from the
/// transformer's config keys (`SanaVariant`), never from names.
struct ModelFolderReport {
    /// One component folder's weights.
    struct Component {
        var name: String
        var className: String
        var parameters: Int
        var fileBytes: Int
        /// Parameters per stored dtype ("BF16": n).
        var dtypes: [String: Int]
        /// Parameters that a text-to-image run holds (a VAE's decoder half; all of the others).
        var usedParameters: Int
    }

    var path: String
    var variant: SanaVariant?
    var components: [Component] = []
    var scheduler: String?
    var flowShift: Double?
    var notes: [String] = []

    static func inspect(path: String) throws -> ModelFolderReport {
        var report = ModelFolderReport(path: path)
        let fm = FileManager.default
        func json(_ file: String) -> JSONValue? {
            guard let bytes = try? BoundedFile.read(Paths.join(path, file), limit: GraphLimits.maxConfigBytes).get()
            else { return nil }
            return try? JSONValue.parse(bytes)
        }
        guard fm.fileExists(atPath: path + "/transformer/config.json") else {
            throw ModelFolderError.invalidConfig(
                path: path, message: "not a diffusers SANA folder: no transformer/config.json (a folder with "
                    + "transformer/, text_encoder/, tokenizer/, vae/ and scheduler/, as the *_diffusers repositories "
                    + "ship; for a single .pth or .safetensors file see 'sanagraph convert')")
        }
        var vaeFactor = 32
        if let vae = json("vae/config.json"), let stages = vae["decoder_block_out_channels"]?.array,
           (1...12).contains(stages.count) {
            vaeFactor = 1 << (stages.count - 1)
        }
        do {
            let bytes = try BoundedFile.read(path + "/transformer/config.json", limit: GraphLimits.maxConfigBytes).get()
            let config = try StrictJSON.decode(SanaTransformerConfig.self, from: bytes)
            report.variant = SanaVariant(config: config, vaeFactor: vaeFactor)
        } catch {
            throw ModelFolderError.invalidConfig(path: path + "/transformer/config.json",
                                                 message: "not a SanaTransformer2DModel config: \(error)")
        }
        for name in ["transformer", "text_encoder", "vae"] {
            let folder = path + "/" + name
            guard fm.fileExists(atPath: folder) else {
                report.notes.append("\(name)/ is missing: the graphs need it")
                continue
            }
            let config = json(name + "/config.json")
            let className = config?["_class_name"]?.string ?? config?["architectures"]?.array?.first?.string ?? "?"
            let checkpoint: SafetensorsCheckpoint
            do { checkpoint = try SafetensorsCheckpoint(path: folder) } catch {
                throw ModelFolderError.weights(path: folder, message: error.description)
            }
            var c = Component(name: name, className: className, parameters: 0, fileBytes: 0, dtypes: [:],
                              usedParameters: 0)
            for key in checkpoint.names {
                guard let info = try? checkpoint.info(key) else { continue }
                c.parameters += info.elementCount
                c.fileBytes += info.byteCount
                c.dtypes[info.dtype.rawValue, default: 0] += info.elementCount
                if name != "vae" || key.hasPrefix("decoder.") { c.usedParameters += info.elementCount }
            }
            report.components.append(c)
        }
        if let scheduler = json("scheduler/scheduler_config.json") {
            report.scheduler = scheduler["_class_name"]?.string
            report.flowShift = scheduler["flow_shift"]?.double
        } else {
            report.notes.append("scheduler/ is missing: the samplers use SANA's (or Sana-Sprint's) settings")
        }
        if !fm.fileExists(atPath: path + "/tokenizer") {
            report.notes.append("tokenizer/ is missing: text_encoder.load needs it")
        }
        report.notes += report.dtypeNotes()
        return report
    }

    func dtypeNotes() -> [String] {
        var notes: [String] = []
        if let t = components.first(where: { $0.name == "transformer" }), t.dtypes["F16"] != nil,
           variant?.family == .sana {
            notes.append("transformer stored in F16: SANA 1.0's fp16-trained checkpoints (600M, non-BF16 1.6B) need the "
                + "±65504 clamp after self-attention, which dit.load always applies (docs/nodes-dit.md)")
        }
        if let e = components.first(where: { $0.name == "text_encoder" }), e.dtypes["F16"] != nil {
            notes.append("text_encoder stored in F16: Gemma-2 overflows in fp16; SanaGraph computes in fp32, so this "
                + "only costs precision already lost in the file")
        }
        return notes
    }

    /// Bytes of the weights a run holds at once: the text encoder runs (and is released) before the transformer
    /// and the VAE decoder are needed.
    func peakWeightParameters() -> Int {
        let used = Dictionary(uniqueKeysWithValues: components.map { ($0.name, $0.usedParameters) })
        return max(used["text_encoder"] ?? 0, (used["transformer"] ?? 0) + (used["vae"] ?? 0))
    }

    var command: String? {
        guard let v = variant else { return nil }
        var line = "sanagraph run \(v.graph) --set models=\(path)"
        if v.binTable != nil, v.family != .sprint || v.binTable == "ASPECT_RATIO_1024_BIN" {
            line += " --set width=\(v.nativePixels) --set height=\(v.nativePixels) --set resolution_binning=true"
        }
        return line
    }

    var text: String {
        func gb(_ bytes: Int) -> String {
            bytes >= 100_000_000 ? String(format: "%.2f GB", Double(bytes) / 1e9)
                : String(format: "%.1f MB", Double(bytes) / 1e6)
        }
        func count(_ n: Int) -> String {
            n >= 1_000_000_000 ? String(format: "%.2f B", Double(n) / 1e9) : String(format: "%.1f M", Double(n) / 1e6)
        }
        var lines = ["model folder: \(path)"]
        if let v = variant {
            lines.append("family:    \(v.name) (\(v.family.rawValue))")
            lines.append("graph:     \(v.graph)")
            lines.append("native:    \(v.nativePixels)×\(v.nativePixels) px; resolution binning: \(v.binTable ?? "none")")
            let shift = flowShift.map { "\($0) (scheduler config)" }
                ?? v.defaultFlowShift.map { "\($0) (not in the scheduler config: the size's default)" } ?? "-"
            lines.append("scheduler: \(scheduler ?? "none") · flow_shift \(shift)")
            for note in v.notes { lines.append("           \(note)") }
        }
        lines.append("components:")
        for c in components {
            let dtypes = c.dtypes.sorted { $0.value > $1.value }.map(\.key).joined(separator: "+")
            var line = "  \(c.name.padding(toLength: 13, withPad: " ", startingAt: 0))"
                + "\(c.className.padding(toLength: 24, withPad: " ", startingAt: 0)) \(count(c.parameters)) params, "
                + "\(dtypes) \(gb(c.fileBytes)) on disk; in memory fp32 \(gb(c.usedParameters * 4)), bf16 "
                + gb(c.usedParameters * 2)
            if c.name == "vae" { line += " (decoder; the encoder only for img2img)" }
            lines.append(line)
        }
        let peak = peakWeightParameters()
        lines.append("expected memory (weights held at once; the text encoder is released before sampling): "
            + "fp32 \(gb(peak * 4)), bf16 \(gb(peak * 2)), plus activations (about 1-2 GB at 1024 px)")
        for note in notes { lines.append("note: \(note)") }
        if let command { lines.append("run: \(command)") }
        return lines.joined(separator: "\n")
    }

    var json: String {
        var object: [String: Any] = ["path": path, "notes": notes]
        if let v = variant {
            object["family"] = v.family.rawValue
            object["name"] = v.name
            object["graph"] = v.graph
            object["native_pixels"] = v.nativePixels
            object["bin_table"] = v.binTable ?? NSNull()
            object["flow_shift"] = flowShift ?? v.defaultFlowShift ?? NSNull()
            object["variant_notes"] = v.notes
        }
        object["scheduler"] = scheduler ?? NSNull()
        object["components"] = components.map { c -> [String: Any] in
            ["name": c.name, "class": c.className, "parameters": c.parameters, "file_bytes": c.fileBytes,
             "dtypes": c.dtypes, "fp32_bytes": c.usedParameters * 4, "bf16_bytes": c.usedParameters * 2]
        }
        let peak = peakWeightParameters()
        object["peak_weight_bytes"] = ["fp32": peak * 4, "bf16": peak * 2]
        object["command"] = command ?? NSNull()
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}
