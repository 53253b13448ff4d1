extension KernelSelection {
    /// What this machine runs, as `(label, text)` lines for `sanagraph info` and the benchmark headers. Builds
    /// two tiny layers to name the implementations oneDNN picks (its JIT decides at primitive creation).
    public func report() -> [(String, String)] {
        let c = cpu
        var lines: [(String, String)] = []
        lines.append(("cpu", "\(c.brand.isEmpty ? "unknown" : c.brand) (\(c.vendor) family \(c.family) model \(c.model) "
                        + "stepping \(c.stepping)), \(c.logicalCPUs) CPU\(c.logicalCPUs == 1 ? "" : "s") available"))
        let amx = c.amxTile ? (amxPermission == true ? "AMX usable" : "AMX present, permission refused") : "no AMX"
        lines.append(("features", c.flags.joined(separator: " ") + " (\(amx))"))
        lines.append(("mode", generic ? "generic (SANAGRAPH_CPU=generic: most generic kernels)" : "auto (chosen from CPU features)"))
        lines.append(("threads", "\(threads) (\(threadsSource)); OpenBLAS single-threaded inside SanaGraph's workers, oneDNN's OpenMP team \(threads)"))
        lines.append(("openblas", "core \(openBLASCore) (\(openBLASCoreSource)); \(openBLASConfig.trimmingCharacters(in: .whitespaces))"))
        if let oneDNNVersion {
            lines.append(("onednn", "\(oneDNNVersion), JIT ISA \(oneDNNISA ?? "?")"))
        } else {
            lines.append(("onednn", "not used: \(oneDNNProblem ?? "unknown")"))
        }
        lines.append(("vector", "\(vectorISA.name) in SanaGraph's element-wise and attention kernels"))
        let probe = Tensor(repeating: 0.5, shape: [64, 64])
        let fp32 = LinearWeight(probe, precision: .fp32)
        let textEncoder = LinearWeight.fp32PacksFromBF16 ? "packed from the file"
            : storedWeights ? "used as stored, decoded per panel in the GEMMs" : "decoded to an fp32 copy at load"
        lines.append(("fp32", "linear layers: \(fp32.kernel); convolutions: SanaGraph (Winograd / im2col / direct) on "
                        + "OpenBLAS \(openBLASCore); attention: SanaGraph's kernels (GEMMs on OpenBLAS); "
                        + "a text encoder's bf16 weights: \(textEncoder)"))
        switch bf16 {
        case .native:
            let l = LinearWeight(probe, precision: .bf16)
            let conv = ConvWeight(Tensor(repeating: 0.5, shape: [16, 16, 3, 3]), bias: nil, padding: 1, precision: .bf16)
            let glumb = bf16Linear == .amxTiles
                ? "; the DiT's GLUMBConv: " + (fusedGLUMBConv ? "one pass" : "two passes (SANAGRAPH_FUSED_GLUMBCONV=0)") : ""
            lines.append(("bf16", "linear layers: \(l.kernel); dense convolutions: \(conv.kernel)\(glumb)"))
        case .emulated:
            lines.append(("bf16", "emulated: operands rounded to bf16, fp32 kernels (same accuracy as bf16, fp32 speed)"))
        case .unavailable(let reason):
            lines.append(("bf16", "precision bf16 runs fp32: \(reason)"))
        }
        return lines
    }

    /// The report as aligned text lines.
    public func reportText(prefix: String = "") -> String {
        let lines = report()
        let width = lines.map(\.0.count).max() ?? 0
        return lines.map { prefix + $0.0 + ":" + String(repeating: " ", count: width - $0.0.count + 1) + $0.1 }
            .joined(separator: "\n")
    }
}
