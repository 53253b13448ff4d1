import CUDA
import Tensors

/// A linear layer's weights on the GPU: bf16 `weight [out, in]` and a bias in the type of the GEMM's output
/// (cuBLASLt adds it in the epilogue). `outputF32` picks fp32 output (what feeds the fp32 residual stream).
struct DeviceLinear: @unchecked Sendable {
    let weight: DeviceTensor
    let bias: DeviceTensor?
    let outputF32: Bool
    var outFeatures: Int { weight.shape[0] }
    var inFeatures: Int { weight.shape[1] }
    var bytes: Int { weight.byteCount + (bias?.byteCount ?? 0) }

    /// `weight` is `[out, in]` or `[out, in, 1, 1]` (1×1 conv; reshaped).
    init(weight: Tensor, bias: Tensor?, outputF32: Bool, on context: CUDAContext) throws {
        let w = weight.reshaped([weight.shape[0], weight.count / weight.shape[0]])
        self.weight = try DeviceTensor(w, dtype: .bf16, on: context)
        self.bias = try bias.map { try DeviceTensor($0, dtype: outputF32 ? .f32 : .bf16, on: context) }
        self.outputF32 = outputF32
    }

    /// Rows of several linears stacked into one (one GEMM for q/k/v). Biases: all or none.
    init(stacking parts: [(weight: Tensor, bias: Tensor?)], outputF32: Bool, on context: CUDAContext) throws {
        let inFeatures = parts[0].weight.count / parts[0].weight.shape[0]
        let weight = Ops.concat(parts.map { $0.weight.reshaped([$0.weight.shape[0], inFeatures]) }, axis: 0)
        let biases = parts.compactMap(\.bias)
        precondition(biases.isEmpty || biases.count == parts.count, "stacked linears need all biases or none")
        try self.init(weight: weight, bias: biases.isEmpty ? nil : Ops.concat(biases, axis: 0), outputF32: outputF32,
                      on: context)
    }

    /// `out[rows, outFeatures] (+)= x[rows, inFeatures] · Wᵀ + b`, x bf16 with rows `ldx` apart, out `ldOut` apart.
    func callAsFunction(_ x: DevicePointer, rows: Int, ldx: Int? = nil, out: DevicePointer, ldOut: Int? = nil,
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
func at(_ base: DevicePointer, _ index: Int, _ dtype: DeviceDType) -> DevicePointer {
    base + DevicePointer(index * dtype.size)
}
