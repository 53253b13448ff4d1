/// The neural-network kernels of `NNKernels.source` on one context, with Swift signatures that check shapes.
/// Pointers are raw device addresses so callers can address columns of fused buffers (q/k/v of one GEMM).
/// Every call only queues work on the context's stream.
public final class NNKernels: @unchecked Sendable {
    public let context: CUDAContext
    let layerNormModulate, rmsNormF32, rmsNormInPlace, gatedResidual, addModTables, activation, addPeriodic,
        patchifyKernel, unpatchifyKernel, dwconvGLU, linAttnKV, linAttnApply, maskedSoftmax: KernelFunction
    public let module: KernelModule

    public init(context: CUDAContext) throws(CUDAError) {
        self.context = context
        module = try context.module(named: "nn", source: Self.source)
        layerNormModulate = try module.function("layernorm_modulate")
        rmsNormF32 = try module.function("rmsnorm_f32_bf16")
        rmsNormInPlace = try module.function("rmsnorm_bf16_inplace")
        gatedResidual = try module.function("gated_residual")
        addModTables = try module.function("add_mod_tables")
        activation = try module.function("activation_bf16")
        addPeriodic = try module.function("add_periodic")
        patchifyKernel = try module.function("patchify")
        unpatchifyKernel = try module.function("unpatchify")
        dwconvGLU = try module.function("dwconv3x3_glu")
        linAttnKV = try module.function("linattn_kv")
        linAttnApply = try module.function("linattn_apply")
        maskedSoftmax = try module.function("masked_softmax")
    }

    /// Blocks for a grid-stride elementwise kernel over `n` items (256 threads each).
    static func elementwiseGrid(_ n: Int) -> (Int, Int, Int) {
        (max(1, min((n + 255) / 256, 132 * 32)), 1, 1)
    }

    /// Row-wise LayerNorm (no affine) of fp32 `x` [rows, dim] then `· (1 + scale[b]) + shift[b]` → bf16 `out`.
    /// `shift`/`scale` point at batch item 0's vector; item b's is `modBatchStride` floats further.
    public func layerNormModulated(x: DevicePointer, out: DevicePointer, rows: Int, dim: Int,
                                   shift: DevicePointer?, scale: DevicePointer?, modBatchStride: Int,
                                   rowsPerBatch: Int, eps: Float) throws(CUDAError) {
        try layerNormModulate.launch(grid: (rows, 1, 1), block: (256, 1, 1), [
            .pointer(x), .pointer(out), .pointer(shift ?? 0), .pointer(scale ?? 0), .int64(Int64(modBatchStride)),
            .int(rowsPerBatch), .int(dim), .float(eps)])
    }

    /// RMSNorm of fp32 `x` [rows, dim] times `weight` [dim] → bf16 `out`.
    public func rmsNorm(x: DevicePointer, weight: DevicePointer, out: DevicePointer, rows: Int, dim: Int,
                        eps: Float) throws(CUDAError) {
        try rmsNormF32.launch(grid: (rows, 1, 1), block: (256, 1, 1),
                              [.pointer(x), .pointer(weight), .pointer(out), .int(dim), .float(eps)])
    }

    /// RMSNorm in place on bf16 rows of `dim` elements, `ld` elements apart, times fp32 `weight`.
    public func rmsNormInPlace(_ x: DevicePointer, rows: Int, dim: Int, ld: Int, weight: DevicePointer,
                               eps: Float) throws(CUDAError) {
        try rmsNormInPlace.launch(grid: (rows, 1, 1), block: (256, 1, 1),
                                  [.pointer(x), .int64(Int64(ld)), .pointer(weight), .int(dim), .float(eps)])
    }

    /// `x += gate[b] · clamp(y, ±clampMagnitude)` over fp32 [rows, dim] (no gate: plain add); also writes
    /// `x` as bf16 to `xBF16` when given.
    public func gatedResidual(x: DevicePointer, y: DevicePointer, gate: DevicePointer?, gateBatchStride: Int,
                              rows: Int, dim: Int, rowsPerBatch: Int, clampMagnitude: Float = .greatestFiniteMagnitude,
                              xBF16: DevicePointer? = nil) throws(CUDAError) {
        let n = rows * dim
        try gatedResidual.launch(grid: Self.elementwiseGrid(n), block: (256, 1, 1), [
            .pointer(x), .pointer(y), .pointer(gate ?? 0), .int64(Int64(gateBatchStride)), .int(rowsPerBatch),
            .int(dim), .int64(Int64(n)), .float(clampMagnitude), .pointer(xBF16 ?? 0)])
    }

    /// `out[blk, b, k, :] = t[b·tBatchStride + k·tKStride ..] + tables[blk, k, :]` (fp32; `out` [blocks, batch, k, dim]).
    public func addModulationTables(t: DevicePointer, tBatchStride: Int, tKStride: Int, tables: DevicePointer,
                                    out: DevicePointer, blocks: Int, batch: Int, k: Int, dim: Int) throws(CUDAError) {
        try addModTables.launch(grid: Self.elementwiseGrid(blocks * batch * k * dim), block: (256, 1, 1), [
            .pointer(t), .int64(Int64(tBatchStride)), .int64(Int64(tKStride)), .pointer(tables), .pointer(out),
            .int(blocks), .int(batch), .int(k), .int(dim)])
    }

    public enum Activation: Int32, Sendable { case identity = 0, silu = 1, geluTanh = 2 }

    /// bf16 `out[i] = f(x[i])` for fp32 `x` of `count` elements.
    public func activation(_ kind: Activation, x: DevicePointer, out: DevicePointer, count: Int) throws(CUDAError) {
        try activation.launch(grid: Self.elementwiseGrid(count), block: (256, 1, 1), bytes: count * 6,
                              [.pointer(x), .pointer(out), .int64(Int64(count)), .int32(kind.rawValue)])
    }

    /// `x[i] += add[i % period]` (fp32).
    public func addPeriodic(_ x: DevicePointer, add: DevicePointer, count: Int, period: Int) throws(CUDAError) {
        try addPeriodic.launch(grid: Self.elementwiseGrid(count), block: (256, 1, 1),
                               [.pointer(x), .pointer(add), .int64(Int64(count)), .int64(Int64(period))])
    }

    /// fp32 latent [B, C, H, W] → bf16 patch rows [B·(H/p)·(W/p), C·p·p] (features (c, dy, dx)).
    public func patchify(_ x: DevicePointer, out: DevicePointer, batch: Int, channels: Int, height: Int, width: Int,
                         patch: Int) throws(CUDAError) {
        try patchifyKernel.launch(grid: Self.elementwiseGrid(batch * channels * height * width), block: (256, 1, 1), [
            .pointer(x), .pointer(out), .int(batch), .int(channels), .int(height), .int(width), .int(patch)])
    }

    /// fp32 rows [B·hp·wp, p·p·C] (features (dy, dx, c)) → fp32 [B, C, hp·p, wp·p].
    public func unpatchify(_ y: DevicePointer, out: DevicePointer, batch: Int, channels: Int, hp: Int, wp: Int,
                           patch: Int) throws(CUDAError) {
        try unpatchifyKernel.launch(grid: Self.elementwiseGrid(batch * channels * hp * wp * patch * patch),
                                    block: (256, 1, 1), [
            .pointer(y), .pointer(out), .int(batch), .int(channels), .int(hp), .int(wp), .int(patch)])
    }

    /// Mix-FFN middle on a token grid: bf16 `a` [B, H·W, 2C] (pre-SiLU) → bf16 `out` [B, H·W, C] =
    /// GLU(depthwise3×3(SiLU(a)) + bias) with `taps` [9, 2C] fp32 (tap-major) and `bias` [2C] fp32.
    public func depthwiseConv3x3GLU(_ a: DevicePointer, taps: DevicePointer, bias: DevicePointer, out: DevicePointer,
                                    batch: Int, height: Int, width: Int, channels: Int) throws(CUDAError) {
        try dwconvGLU.launch(grid: Self.elementwiseGrid(batch * height * width * channels), block: (256, 1, 1),
                             bytes: batch * height * width * channels * 6, [
            .pointer(a), .pointer(taps), .pointer(bias), .pointer(out), .int(batch), .int(height), .int(width),
            .int(channels)])
    }

    /// Head dim the linear-attention kernels are built for.
    public static let linearAttentionHeadDim = 32
    /// Tokens each block of the key·value reduction covers.
    static let linearAttentionChunk = 128

    /// Bytes of fp32 scratch `reluLinearAttention` needs for `batch · heads` over `tokens`.
    public static func linearAttentionScratchBytes(batch: Int, heads: Int, tokens: Int) -> Int {
        let chunks = (tokens + linearAttentionChunk - 1) / linearAttentionChunk
        return batch * heads * chunks * 32 * 33 * 4
    }

    /// SANA's ReLU linear attention (fp32 inside, eps added to the normaliser) on bf16 q/k/v that sit in rows
    /// `ld` apart at column offsets `qOffset`/`kOffset`/`vOffset` (head h at +32h); bf16 result rows `outLD` apart.
    public func reluLinearAttention(qkv: DevicePointer, ld: Int, qOffset: Int, kOffset: Int, vOffset: Int,
                                    out: DevicePointer, outLD: Int, batch: Int, tokens: Int, heads: Int,
                                    scratch: DevicePointer, eps: Float = 1e-15) throws(CUDAError) {
        let chunks = (tokens + Self.linearAttentionChunk - 1) / Self.linearAttentionChunk
        try linAttnKV.launch(grid: (batch * heads, chunks, 1), block: (256, 1, 1), [
            .pointer(qkv), .pointer(scratch), .int(tokens), .int(heads), .int64(Int64(ld)), .int(kOffset),
            .int(vOffset), .int(Self.linearAttentionChunk)])
        try linAttnApply.launch(grid: (batch * heads, (tokens + 127) / 128, 1), block: (128, 1, 1), [
            .pointer(qkv), .pointer(scratch), .pointer(out), .int(tokens), .int(heads), .int64(Int64(ld)),
            .int(qOffset), .int(chunks), .int64(Int64(outLD)), .float(eps)])
    }

    /// Row softmax of fp32 scores [rows, ld] over the first `cols` columns, plus the additive bias
    /// [batch, cols] of row's batch item (`rowsPerBatch` rows each), → bf16 [rows, ld] (padding columns 0).
    public func maskedSoftmax(scores: DevicePointer, bias: DevicePointer?, out: DevicePointer, rows: Int, cols: Int,
                              ld: Int, rowsPerBatch: Int) throws(CUDAError) {
        try maskedSoftmax.launch(grid: ((rows + 7) / 8, 1, 1), block: (256, 1, 1), [
            .pointer(scores), .pointer(bias ?? 0), .pointer(out), .int64(Int64(rows)), .int(cols), .int(ld),
            .int64(Int64(rowsPerBatch))])
    }
}
