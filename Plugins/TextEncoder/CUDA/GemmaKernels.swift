import CUDA

/// The Gemma-2 kernels of `GemmaKernels.source` on one context, with Swift signatures. Pointers are raw device
/// addresses; every call only queues work on the context's stream.
public final class GemmaKernels: @unchecked Sendable {
    public let context: CUDAContext
    public let module: KernelModule
    let ropeSplitKernel, softmaxKernel, gegluKernel, residualNormKernel: KernelFunction

    public init(context: CUDAContext) throws(CUDAError) {
        self.context = context
        module = try context.module(named: "gemma", source: Self.source)
        ropeSplitKernel = try module.function("gemma_rope_split")
        softmaxKernel = try module.function("gemma_attention_softmax")
        gegluKernel = try module.function("gemma_geglu")
        residualNormKernel = try module.function("gemma_residual_norm")
    }

    /// Blocks for a grid-stride elementwise kernel over `n` items (256 threads each).
    static func elementwiseGrid(_ n: Int) -> (Int, Int, Int) {
        (max(1, min((n + 255) / 256, 132 * 32)), 1, 1)
    }

    /// RoPE on the q and k heads of bf16 `qkv` [batch·length, (heads + 2·kvHeads)·headDim] (positions 0..<length,
    /// `invFreq` fp32 [headDim/2]), scattered as bf16 `q` [batch, kvHeads, length, heads/kvHeads, headDim],
    /// `k` [batch, kvHeads, length, headDim] and `v` [batch, heads, length, headDim] (unchanged, each KV head
    /// repeated for its query heads).
    public func ropeSplit(qkv: DevicePointer, invFreq: DevicePointer, q: DevicePointer, k: DevicePointer,
                          v: DevicePointer, batch: Int, length: Int, heads: Int, kvHeads: Int,
                          headDim: Int) throws(CUDAError) {
        precondition(heads % kvHeads == 0 && headDim % 2 == 0, "ropeSplit: heads \(heads), kv \(kvHeads), dim \(headDim)")
        let n = batch * length * (heads + 2 * kvHeads) * headDim / 2
        try ropeSplitKernel.launch(grid: Self.elementwiseGrid(n), block: (256, 1, 1), [
            .pointer(qkv), .pointer(invFreq), .pointer(q), .pointer(k), .pointer(v), .int(batch), .int(length),
            .int(heads), .int(kvHeads), .int(headDim)])
    }

    /// Causal softmax of Gemma-2 attention scores: fp32 `scores` [batch·kvHeads, length·group, ld] (rows
    /// (b, g, t, r), already scaled; soft-capped in place) → bf16 `probabilities` [batch, heads, length, ld] (query
    /// head g·group + r). `softcap` nil: none;
    /// `window` nil: global attention; `mask` fp32 [batch, length] (1 = token, 0 = padding).
    public func attentionSoftmax(scores: DevicePointer, mask: DevicePointer, probabilities: DevicePointer, batch: Int,
                                 kvHeads: Int, group: Int, length: Int, ld: Int, softcap: Float?,
                                 window: Int?) throws(CUDAError) {
        let rows = batch * kvHeads * length * group
        try softmaxKernel.launch(grid: ((rows + 7) / 8, 1, 1), block: (256, 1, 1), [
            .pointer(scores), .pointer(mask), .pointer(probabilities), .int64(Int64(rows)), .int(length), .int(group),
            .int(kvHeads), .int(ld), .float(softcap ?? 0), .int(min(window ?? 0, Int(Int32.max)))])
    }

    /// bf16 `out` [rows, intermediate] = GELU(gate) · up from fp32 `gateUp` [rows, 2·intermediate] (gate | up);
    /// `exact`: erf GELU instead of the tanh approximation.
    public func geglu(_ gateUp: DevicePointer, out: DevicePointer, rows: Int, intermediate: Int,
                      exact: Bool) throws(CUDAError) {
        try gegluKernel.launch(grid: Self.elementwiseGrid(rows * intermediate), block: (256, 1, 1), [
            .pointer(gateUp), .pointer(out), .int64(Int64(rows)), .int(intermediate), .int32(exact ? 1 : 0)])
    }

    /// Per row of the fp32 residual stream `x` [rows, dim]: with `y`, `x += RMSNorm(y) · postWeight`; then
    /// `RMSNorm(x) · nextWeight` to bf16 `outBF16` or fp32 `outF32` (exactly one of them). Weights fp32, already
    /// Gemma's `1 + w`.
    public func residualNorm(x: DevicePointer, y: DevicePointer?, postWeight: DevicePointer?, nextWeight: DevicePointer,
                             outBF16: DevicePointer?, outF32: DevicePointer?, rows: Int, dim: Int,
                             eps: Float) throws(CUDAError) {
        precondition((outBF16 == nil) != (outF32 == nil), "residualNorm: exactly one output")
        precondition((y == nil) == (postWeight == nil), "residualNorm: y and postWeight go together")
        try residualNormKernel.launch(grid: (rows, 1, 1), block: (256, 1, 1), [
            .pointer(x), .pointer(y ?? 0), .pointer(postWeight ?? 0), .pointer(nextWeight), .pointer(outBF16 ?? 0),
            .pointer(outF32 ?? 0), .int(dim), .float(eps)])
    }
}
