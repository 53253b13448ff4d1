import Tensors

extension ParamSpec {
    /// The `precision` param of model loaders (`dit.load`, `text_encoder.load`, `dcae.load`, `upscale.load`).
    public static let precision = ParamSpec(
        "precision", .choice(Precision.allCases.map(\.rawValue)), default: .string(Precision.fp32.rawValue),
        doc: "arithmetic of the model's GEMMs and convolutions: fp32 (exact diffusers parity) or bf16 (bfloat16 "
            + "operands, fp32 sums: AMX / AVX512_BF16 via oneDNN, ~2e-3 relative error per layer); bf16 runs fp32 "
            + "with a warning on CPUs without a bf16 unit")
}

extension ParamValues {
    /// The `precision` param (fp32 when absent).
    public func precision() -> Precision {
        optionalString("precision").flatMap(Precision.init(rawValue:)) ?? .fp32
    }
}

extension RunContext {
    /// Records, as a `node_note` event, what a loader's `precision` runs as and on which kernel, warning when a
    /// bf16 request falls back to fp32. Returns the precision to load with.
    @discardableResult
    public func notePrecision(_ requested: Precision, kernel: () -> String) -> Precision {
        let (effective, warning) = Kernels.effectivePrecision(requested)
        if let warning { note(warning, warning: true) }
        note("precision \(effective.rawValue): \(kernel())")
        return effective
    }
}
