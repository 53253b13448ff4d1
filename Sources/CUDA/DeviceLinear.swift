import Safetensors
import Tensors

/// A linear layer on the GPU: bf16 weight `[out, in]`, an optional bias in the output's type (added in the GEMM's
/// epilogue), one cuBLASLt GEMM with fp32 accumulation per call. Several checkpoint weights may be stacked along
/// `out` (one GEMM for q|k|v or gate|up). Shared by every model with linear layers on the GPU.
public struct DeviceLinear: @unchecked Sendable {
    public let weight: DeviceTensor
    public let bias: DeviceTensor?
    /// fp32 output (else bf16).
    public let outputF32: Bool
    public var outFeatures: Int { weight.shape[0] }
    public var inFeatures: Int { weight.shape[1] }
    public var bytes: Int { weight.byteCount + (bias?.byteCount ?? 0) }

    /// `weight` is `[out, in]` or `[out, in, 1, 1]` (1×1 conv; reshaped), rounded to bf16 once.
    public init(weight: Tensor, bias: Tensor?, outputF32: Bool, on context: CUDAContext) throws {
        let w = weight.reshaped([weight.shape[0], weight.count / weight.shape[0]])
        self.weight = try DeviceTensor(w, dtype: .bf16, on: context)
        self.bias = try bias.map { try DeviceTensor($0, dtype: outputF32 ? .f32 : .bf16, on: context) }
        self.outputF32 = outputF32
    }

    /// Rows of several linears stacked into one (one GEMM for q/k/v). Biases: all or none.
    public init(stacking parts: [(weight: Tensor, bias: Tensor?)], outputF32: Bool, on context: CUDAContext) throws {
        let inFeatures = parts[0].weight.count / parts[0].weight.shape[0]
        let weight = Ops.concat(parts.map { $0.weight.reshaped([$0.weight.shape[0], inFeatures]) }, axis: 0)
        let biases = parts.compactMap(\.bias)
        precondition(biases.isEmpty || biases.count == parts.count, "stacked linears need all biases or none")
        try self.init(weight: weight, bias: biases.isEmpty ? nil : Ops.concat(biases, axis: 0), outputF32: outputF32,
                      on: context)
    }

    /// Bias-free weights as stored in a checkpoint (each `[out_i, in]`), stacked in order without an fp32 copy on
    /// the host: bf16 tensors are copied as stored, others rounded once. A file's pages are released afterwards.
    public init(stacking raws: [RawTensorBytes], outputF32: Bool, on context: CUDAContext) throws {
        let inFeatures = raws[0].shape.dropFirst().reduce(1, *)
        let rows = raws.reduce(0) { $0 + ($1.shape.first ?? 0) }
        weight = try DeviceTensor(uninitialized: [rows, inFeatures], dtype: .bf16, on: context)
        var row = 0
        for raw in raws {
            try Self.upload(raw, to: deviceAddress(weight.pointer, element: row * inFeatures, .bf16), context)
            row += raw.shape.first ?? 0
        }
        bias = nil
        self.outputF32 = outputF32
    }

    /// Copies one stored tensor into bf16 device memory at `destination`.
    static func upload(_ raw: RawTensorBytes, to destination: DevicePointer, _ context: CUDAContext) throws {
        let n = raw.shape.reduce(1, *)
        guard n > 0, let base = raw.bytes.baseAddress, raw.bytes.count >= n * raw.dtype.size else { return }
        if raw.dtype == .bf16 {
            try context.copy(toDevice: destination, from: base, bytes: n * 2)
        } else {
            var bits = [UInt16](repeating: 0, count: n)
            raw.decoded().withUnsafeBufferPointer { src in
                for i in 0..<n { bits[i] = DTypeConversion.bf16Bits(src[i]) }
            }
            try bits.withUnsafeBytes { try context.copy(toDevice: destination, from: $0.baseAddress!, bytes: n * 2) }
        }
        // A file's pages are no longer needed in this process (in-memory tensors are not a mapping: keep them).
        if !(raw.owner is TensorStorage) { raw.releaseSourcePages() }
    }

    /// `out[rows, outFeatures] (+)= x[rows, inFeatures] · Wᵀ + b`, x bf16 with rows `ldx` apart, out `ldOut` apart.
    public func callAsFunction(_ x: DevicePointer, rows: Int, ldx: Int? = nil, out: DevicePointer, ldOut: Int? = nil,
                               accumulate: Bool = false, gemm: Gemm, stream: CUHandle?) throws(CUDAError) {
        try gemm.run(m: rows, n: outFeatures, k: inFeatures,
                     a: GemmOperand(x, ld: ldx ?? inFeatures),
                     b: GemmOperand(weight.pointer, ld: inFeatures), bTransposed: true,
                     d: GemmOperand(out, ld: ldOut ?? outFeatures), outputF32: outputF32,
                     bias: bias?.pointer, accumulate: accumulate, stream: stream)
    }
}

/// Byte address of element `index` of a `dtype` buffer at `base`.
@inline(__always)
public func deviceAddress(_ base: DevicePointer, element index: Int, _ dtype: DeviceDType) -> DevicePointer {
    base + DevicePointer(index * dtype.size)
}
