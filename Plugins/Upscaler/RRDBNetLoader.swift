import Foundation
import SanaGraphKit
import DiffusionModels
import Safetensors
import Tensors

/// Builds an `RRDBNet` from a safetensors file, inferring the architecture from tensor names and shapes as the
/// ecosystem's loaders do (Real-ESRGAN / basicsr, spandrel, ComfyUI).
///
/// Accepted layouts:
/// - Real-ESRGAN "new-arch" names: `conv_first`, `body.N.rdb{1,2,3}.conv{1..5}`, `conv_body`, `conv_up1`,
///   `conv_up2`, `conv_hr`, `conv_last` (each `.weight` and `.bias`), optionally under `params_ema.`, `params.` or
///   `module.`;
/// - original ESRGAN "old-arch" x4 names: `model.0`, `model.1.sub.N.RDBk.convj.0`, `model.1.sub.<num_block>`,
///   `model.3`, `model.6`, `model.8`, `model.10` — remapped to the above.
///
/// num_feat = conv_first's output channels, num_grow_ch = conv1's output channels, num_block = number of `body.N`,
/// scale from conv_first's input channels: 3 → x4, 12 → x2 (pixel-unshuffle 2), 48 → x1 (pixel-unshuffle 4).
/// Anything else is refused with `ModelFolderError` (exit 4) naming the file and the problem; once the
/// architecture is known, every missing, unexpected or wrongly shaped tensor is listed at once.
public enum RRDBNetLoader {
    public static func load(path: String, precision: Precision = .fp32) throws -> RRDBNet {
        let file: SafetensorsFile
        do {
            file = try SafetensorsFile(path: path)
        } catch {
            throw ModelFolderError.weights(path: path, message: "cannot open upscaler weights: \(error)")
        }
        var names: [String: String] = [:]  // canonical name -> name in file
        for name in file.names { names[strippingPrefix(name)] = name }
        if names["model.0.weight"] != nil { names = try remapOldArch(names, path: path) }

        func info(_ canonical: String) throws -> TensorInfo {
            guard let stored = names[canonical], let i = file.tensors[stored] else {
                let sample = file.names.prefix(5).joined(separator: ", ")
                throw ModelFolderError.invalidConfig(path: path, message: "not an ESRGAN/Real-ESRGAN RRDBNet: no tensor '\(canonical)' "
                    + "(the file has \(file.names.count) tensors, e.g. \(sample))")
            }
            return i
        }
        let first = try info("conv_first.weight")
        guard first.shape.count == 4 else { throw ModelFolderError.invalidConfig(path: path, message: "conv_first.weight must be 4-D, is \(first.shape)") }
        let numFeat = first.shape[0], inCh = first.shape[1]
        let scale: Int
        switch inCh {
        case 3: scale = 4
        case 12: scale = 2
        case 48: scale = 1
        default:
            throw ModelFolderError.invalidConfig(path: path, message: "conv_first takes \(inCh) input channels; expected 3 (x4), "
                + "12 (x2) or 48 (x1) for an RGB RRDBNet")
        }
        if names["conv_up3.weight"] != nil {
            throw ModelFolderError.invalidConfig(path: path, message: "x8 RRDBNets (conv_up3) are not supported")
        }
        var blocks = Set<Int>()
        for key in names.keys where key.hasPrefix("body.") {
            if let n = Int(key.split(separator: ".")[1]) { blocks.insert(n) }
        }
        let numBlock = blocks.count
        guard numBlock > 0, blocks == Set(0..<numBlock) else {
            throw ModelFolderError.invalidConfig(path: path, message: "RRDB blocks must be numbered body.0 … body.N without gaps, found \(blocks.sorted())")
        }
        let numGrow = try info("body.0.rdb1.conv1.weight").shape.first ?? 0
        let numOut = try info("conv_last.weight").shape.first ?? 0
        guard numOut == 3 else {
            throw ModelFolderError.invalidConfig(path: path, message: "conv_last produces \(numOut) channels; only RGB (3) models are supported")
        }
        let config = RRDBNetConfig(scale: scale, numFeat: numFeat, numBlock: numBlock, numGrowCh: numGrow,
                                   numInCh: 3, numOutCh: 3)

        let source: WeightSource
        do { source = try WeightSource.file(file).renamed(keys: names) } catch {
            throw ModelFolderError.weights(path: path, message: "cannot read upscaler weights: \(error)")
        }
        let folder = "an RRDBNet of num_feat \(numFeat), num_grow_ch \(numGrow), num_block \(numBlock), x\(scale)"
        return try WeightStore.load(source, path: path, folder: folder, precision: precision) { w in
            RRDBNet(config: config, convFirst: Conv3x3(w, "conv_first", in: inCh, out: numFeat),
                    body: (0..<numBlock).map { n in
                        (1...3).flatMap { r in
                            (1...5).map { c in
                                Conv3x3(w, "body.\(n).rdb\(r).conv\(c)", in: numFeat + (c - 1) * numGrow,
                                        out: c == 5 ? numFeat : numGrow)
                            }
                        }
                    },
                    convBody: Conv3x3(w, "conv_body", in: numFeat, out: numFeat),
                    convUp1: Conv3x3(w, "conv_up1", in: numFeat, out: numFeat),
                    convUp2: Conv3x3(w, "conv_up2", in: numFeat, out: numFeat),
                    convHR: Conv3x3(w, "conv_hr", in: numFeat, out: numFeat),
                    convLast: Conv3x3(w, "conv_last", in: numFeat, out: 3))
        }
    }

    static func strippingPrefix(_ name: String) -> String {
        for prefix in ["params_ema.", "params.", "module."] where name.hasPrefix(prefix) {
            return String(name.dropFirst(prefix.count))
        }
        return name
    }

    /// Old ESRGAN names -> new-arch names (x4 layout only: two upsampling convs at model.3 and model.6).
    static func remapOldArch(_ names: [String: String], path: String) throws -> [String: String] {
        var subs = Set<Int>()
        for key in names.keys where key.hasPrefix("model.1.sub.") {
            if let n = Int(key.split(separator: ".")[3]) { subs.insert(n) }
        }
        guard let trunkConv = subs.max() else {
            throw ModelFolderError.invalidConfig(path: path, message: "old-style ESRGAN weights without model.1.sub.* blocks")
        }
        let tail = Set(names.keys.compactMap { key -> Int? in
            let parts = key.split(separator: ".")
            return parts.count == 3 && parts[0] == "model" ? Int(parts[1]) : nil
        }).subtracting([0])
        guard tail == [3, 6, 8, 10] else {
            throw ModelFolderError.invalidConfig(path: path, message: "old-style ESRGAN weights with convs at model.\(tail.sorted()); "
                + "only the x4 layout (model.3, model.6, model.8, model.10) is supported — convert to Real-ESRGAN names")
        }
        let fixed = ["model.0": "conv_first", "model.1.sub.\(trunkConv)": "conv_body", "model.3": "conv_up1",
                     "model.6": "conv_up2", "model.8": "conv_hr", "model.10": "conv_last"]
        var out: [String: String] = [:]
        for (key, stored) in names {
            let parts = key.split(separator: ".").map(String.init)
            let kind = parts.last ?? ""
            let stem = parts.dropLast().joined(separator: ".")
            if let new = fixed[stem] {
                out["\(new).\(kind)"] = stored
            } else if parts.count == 8, parts[0] == "model", parts[2] == "sub", parts[4].hasPrefix("RDB"), parts[6] == "0" {
                // model.1.sub.N.RDBk.convj.0.weight
                out["body.\(parts[3]).rdb\(parts[4].dropFirst(3)).\(parts[5]).\(kind)"] = stored
            } else {
                out[key] = stored  // reported as unexpected
            }
        }
        return out
    }
}
