internal import CKernels
import Dispatch

/// How a layer's weights are held and which kernel runs them (normally chosen by `Kernels`; tests and benchmarks
/// may name one).
public enum WeightKernel: Sendable, Equatable {
    /// fp32 weights as a `Tensor`, GEMMs by OpenBLAS split over our workers (or our own convolutions).
    case plain
    /// Weights packed by oneDNN (fp32 or bf16) in the layout its primitive wants; oneDNN runs the layer.
    case oneDNN
    /// bf16 weights in AMX tile order; SanaGraph's AMX kernel runs the layer (bf16 linear layers where the CPU has
    /// AMX). Named on a CPU without AMX, the same kernel runs with its tile instructions emulated (tests only: slow).
    case amxTiles
    /// bf16 arithmetic without a bf16 unit: weights and inputs rounded to bf16, products summed by the fp32
    /// kernels. Exact products (8-bit × 8-bit mantissas fit fp32), fp32 sums: what bf16 hardware computes.
    case emulatedBF16
    /// bf16 weights left where they are stored (a checkpoint's file mapping) and decoded to fp32 one panel at a time
    /// inside each GEMM (OpenBLAS): `.plain`'s fp32 arithmetic without an fp32 copy (or a packed one) of the model.
    /// For layers that run a few GEMMs per load (a text encoder's, once per prompt), where writing that copy costs
    /// more than the GEMMs gain from it (`WeightStore`'s `WeightReuse.few`).
    case storedBF16

    /// The kernel for `precision` on this machine (`Kernels`), for linear layers or (`conv`) convolutions.
    static func choose(_ precision: Precision, conv: Bool) -> WeightKernel {
        switch precision {
        case .fp32: return !conv && Kernels.selection.fp32Linear == .oneDNN ? .oneDNN : .plain
        case .bf16:
            if !conv && Kernels.amxTilesOverride { return .amxTiles }
            switch Kernels.bf16 {
            case .native: return !conv && Kernels.selection.bf16Linear == .amxTiles ? .amxTiles : .oneDNN
            case .emulated: return .emulatedBF16
            case .unavailable: return .plain
            }
        }
    }
}

/// An `nn.Linear` weight `[out, in]` prepared once for this CPU's kernels at a precision (`Ops.linear`).
///
/// fp32: oneDNN's prepacked layout where oneDNN runs fp32 linears (`Kernels`), else the tensor itself (an fp32
/// tensor mapped from a file stays zero-copy). bf16: packed bf16 (half the memory) where the CPU has a bf16
/// unit, rounded fp32 when emulated; where bf16 is unavailable the layer runs fp32 (`Kernels.effectivePrecision`).
public final class LinearWeight: @unchecked Sendable {
    public let outFeatures: Int, inFeatures: Int
    /// The precision the layer computes at.
    public let precision: Precision
    /// The kernel that runs it, e.g. "oneDNN brg:avx512_core_amx" or "OpenBLAS Cooperlake".
    public let kernel: String
    public let mode: WeightKernel
    /// fp32 weights (`.plain`) or bf16-rounded fp32 weights (`.emulatedBF16`).
    let tensor: Tensor?
    let packed: OpaquePointer?
    /// bf16 weights in AMX tile order (`.amxTiles`).
    let tiles: UnsafeMutablePointer<UInt16>?
    /// `[out, in]` bf16 weights as stored, and what keeps them mapped (`.storedBF16`).
    let stored: (bits: UnsafePointer<UInt16>, owner: AnyObject)?

    /// Prepares `weight` `[out, in]`. A bf16 request on a CPU without bf16 arithmetic gives an fp32 layer.
    public convenience init(_ weight: Tensor, precision: Precision = .fp32) {
        let effective = Kernels.effectivePrecision(precision).0
        self.init(weight, precision: effective, mode: WeightKernel.choose(effective, conv: false))
    }

    /// Prepares `weight` for a named kernel (benchmarks, tests); `.oneDNN` falls back when oneDNN cannot.
    public init(_ weight: Tensor, precision: Precision, mode requested: WeightKernel) {
        precondition(weight.rank == 2, "LinearWeight: expected [out, in], got \(weight.shape)")
        let (outFeatures, inFeatures) = (weight.shape[0], weight.shape[1])
        (self.outFeatures, self.inFeatures) = (outFeatures, inFeatures)
        // `.storedBF16` needs weights stored as bf16: `init(storedBF16:…)`.
        var mode: WeightKernel = (requested == .amxTiles && precision != .bf16) || requested == .storedBF16 ? .plain : requested
        var packed: OpaquePointer?
        stored = nil
        var kernel = ""
        tiles = mode == .amxTiles
            ? weight.withUnsafeBufferPointer { Self.packForAMX($0.baseAddress!, bf16Source: false, outFeatures, inFeatures) }
            : nil
        if mode == .oneDNN {
            if let (p, name) = weight.withUnsafeBufferPointer({
                Self.packForOneDNN($0.baseAddress, bf16Source: false, outFeatures, inFeatures, precision)
            }) {
                (packed, kernel) = (p, name)
            } else {
                mode = precision == .bf16 ? .emulatedBF16 : .plain  // e.g. an instruction set oneDNN lacks a kernel for
            }
        }
        self.mode = mode
        self.packed = packed
        self.precision = precision
        switch mode {
        case .oneDNN, .amxTiles, .storedBF16: tensor = nil
        case .plain: tensor = weight
        case .emulatedBF16: tensor = BF16.rounded(weight)
        }
        let blas = "OpenBLAS " + Kernels.selection.openBLASCore
        switch mode {
        case .oneDNN: self.kernel = kernel
        case .amxTiles: self.kernel = Self.amxKernelName
        case .plain, .storedBF16: self.kernel = blas
        case .emulatedBF16: self.kernel = "bf16 emulation (\(blas))"
        }
    }

    /// Keeps `[out, in]` bf16 weights where they are (`bits`: 2-byte aligned, valid while `owner` lives, e.g. a
    /// checkpoint's mapping) for fp32 arithmetic on them (`WeightKernel.storedBF16`). Nil when `bits` is misaligned.
    public init?(storedBF16 bits: UnsafeRawPointer, outFeatures: Int, inFeatures: Int, owner: AnyObject) {
        guard Int(bitPattern: bits) % 2 == 0, outFeatures > 0, inFeatures > 0 else { return nil }
        (self.outFeatures, self.inFeatures, precision, mode) = (outFeatures, inFeatures, .fp32, .storedBF16)
        (tensor, packed, tiles) = (nil, nil, nil)
        stored = (bits.assumingMemoryBound(to: UInt16.self), owner)
        kernel = "OpenBLAS \(Kernels.selection.openBLASCore) on bf16 weights decoded per panel"
    }

    /// Prepares `[out, in]` weights stored as bf16 (e.g. a checkpoint's mapped bytes, 2-byte aligned) straight into
    /// oneDNN's or the AMX kernel's layout at `precision`, without the fp32 copy they would otherwise be decoded
    /// into (the values are the same: bf16 → fp32 is exact). Nil where the layer would run on neither, or where
    /// oneDNN has no JIT code to pack bf16 (CPUs without AVX-512: its generic reorder is ~15× slower than decoding
    /// first): decode and use `init(_:precision:)`.
    /// `mode` names a kernel (tests); nil takes the machine's.
    public init?(bf16Weights bits: UnsafeRawPointer, outFeatures: Int, inFeatures: Int, precision requested: Precision,
                 mode named: WeightKernel? = nil) {
        let precision = Kernels.effectivePrecision(requested).0
        guard Int(bitPattern: bits) % 2 == 0, outFeatures > 0, inFeatures > 0 else { return nil }
        var mode = named ?? WeightKernel.choose(precision, conv: false)
        if mode == .amxTiles && precision != .bf16 { mode = .plain }
        switch mode {
        case .amxTiles:
            (packed, kernel) = (nil, Self.amxKernelName)
            tiles = Self.packForAMX(bits, bf16Source: true, outFeatures, inFeatures)
            stored = nil
        case .oneDNN:
            guard let (packed, kernel) = Self.packForOneDNN(bits, bf16Source: true, outFeatures, inFeatures, precision)
            else { return nil }
            (self.packed, self.kernel, tiles, stored) = (packed, kernel, nil, nil)
        case .plain, .emulatedBF16, .storedBF16:
            return nil
        }
        (self.outFeatures, self.inFeatures, self.precision) = (outFeatures, inFeatures, precision)
        (self.mode, self.tensor) = (mode, nil)
    }

    /// Whether fp32 layers pack straight from bf16 weights on this machine (`init(bf16Weights:…)`: oneDNN with JIT
    /// reorders, i.e. AVX-512); where not, a `WeightReuse.few` model keeps them as stored (`.storedBF16`).
    public static let fp32PacksFromBF16: Bool = {
        let bits = [UInt16](repeating: 0x3F00, count: 64 * 64)
        return bits.withUnsafeBytes {
            LinearWeight(bf16Weights: $0.baseAddress!, outFeatures: 64, inFeatures: 64, precision: .fp32)
        } != nil
    }()

    static let amxKernelName = "SanaGraph AMX tiles (bf16)"

    /// `[out, in]` weights (fp32 or bf16 at `source`) in the AMX kernel's tile order, packed by our workers.
    private static func packForAMX(_ source: UnsafeRawPointer, bf16Source: Bool, _ outFeatures: Int, _ inFeatures: Int)
        -> UnsafeMutablePointer<UInt16> {
        let bytes = sg_amx_packed_bytes(outFeatures, inFeatures)
        let tiles = BufferPool.shared.allocateWeights(bytes: bytes).bindMemory(to: UInt16.self, capacity: bytes / 2)
        let (src, dst) = (SendablePointer(UnsafeMutableRawPointer(mutating: source).assumingMemoryBound(to: UInt8.self)),
                          SendablePointer(tiles))
        Parallel.forEachRange((outFeatures + 31) / 32, minChunk: Swift.max(1, 65_536 / Swift.max(1, inFeatures))) { blocks in
            sg_amx_pack(src.pointer, bf16Source ? 1 : 0, outFeatures, inFeatures, dst.pointer, blocks.lowerBound, blocks.upperBound)
        }
        return tiles
    }

    /// oneDNN's packed copy of `[out, in]` weights (fp32 or bf16 at `source`) and its kernel name; nil when oneDNN
    /// cannot run them.
    private static func packForOneDNN(_ source: UnsafeRawPointer?, bf16Source: Bool, _ outFeatures: Int, _ inFeatures: Int,
                                      _ precision: Precision) -> (OpaquePointer, String)? {
        var impl = [CChar](repeating: 0, count: 128), error = [CChar](repeating: 0, count: 256)
        guard let packed = sg_linear_create(source, bf16Source ? 1 : 0, outFeatures, inFeatures, precision == .bf16 ? 1 : 0,
                                            &impl, impl.count, &error, error.count) else { return nil }
        return (packed, "oneDNN " + String(cBuffer: impl))
    }

    deinit {
        if let packed { sg_linear_destroy(packed) }
        tiles?.deallocate()
    }

    /// Bytes the weights occupy.
    public var byteCount: Int {
        if tiles != nil { return sg_amx_packed_bytes(outFeatures, inFeatures) }
        if stored != nil { return outFeatures * inFeatures * 2 }
        return packed.map { sg_linear_bytes($0) } ?? tensor!.byteCount
    }

    /// The weights as fp32 `[out, in]`, as the layer computes with them (bf16 values for a bf16 layer).
    public func unpacked() -> Tensor {
        if let tensor { return tensor }
        var out = Tensor(uninitialized: [outFeatures, inFeatures])
        if let tiles {
            out.withUnsafeMutableBufferPointer { sg_amx_unpack(tiles, outFeatures, inFeatures, $0.baseAddress) }
            return out
        }
        if let stored {
            DTypeConversion.decode(.bf16, from: stored.bits, count: out.count, into: out.storage.pointer)
            return out
        }
        let status = out.withUnsafeMutableBufferPointer { sg_linear_unpack(packed, $0.baseAddress) }
        precondition(status == 0, "LinearWeight.unpacked: oneDNN failed (status \(status))")
        return out
    }
}

/// An activation applied to a linear layer's output (`Ops.linear(_:weight:bias:activation:)`).
public enum LinearActivation: Sendable {
    case none
    /// `torch.nn.functional.silu`.
    case silu
}

extension Ops {
    /// `torch.nn.functional.linear` with prepared weights: `y = x Wᵀ + bias`, `x [..., in]`, `bias [out]`.
    public static func linear(_ x: Tensor, weight w: LinearWeight, bias: Tensor?) -> Tensor {
        linear(x, weight: w, bias: bias, activation: .none)
    }

    /// `activation(x Wᵀ + bias)`: on the AMX kernel the activation is applied to each output block before it is
    /// stored (no second pass over the output), elsewhere in place afterwards.
    public static func linear(_ x: Tensor, weight w: LinearWeight, bias: Tensor?, activation: LinearActivation) -> Tensor {
        precondition(x.rank >= 1 && x.shape[x.rank - 1] == w.inFeatures,
                     "linear: x \(x.shape) does not match weights [\(w.outFeatures), \(w.inFeatures)]")
        if let bias { precondition(bias.count == w.outFeatures, "linear: bias \(bias.shape) does not match \(w.outFeatures) outputs") }
        var y: Tensor
        switch w.mode {
        case .plain:
            y = linear(x, weight: w.tensor!, bias: bias)
        case .emulatedBF16:
            y = linear(BF16.rounded(x), weight: w.tensor!, bias: bias)
        case .storedBF16:
            y = Tensor(uninitialized: Array(x.shape.dropLast()) + [w.outFeatures])
            storedBF16Linear(x, rows: x.shape.dropLast().reduce(1, *), weight: w, bias: bias, into: y)
        case .oneDNN, .amxTiles:
            let rows = x.shape.dropLast().reduce(1, *)
            y = Tensor(uninitialized: Array(x.shape.dropLast()) + [w.outFeatures])
            guard rows > 0 else { return y }
            if w.inFeatures == 0 {
                fillRows(y.storage.pointer, rows: rows, columns: w.outFeatures, bias: bias)
            } else if w.mode == .amxTiles {
                amxLinear(x, rows: rows, weight: w, bias: bias, activation: activation, into: y)
                return y
            } else {
                let scratch = TensorStorage(uninitializedCount: (sg_linear_scratch_bytes(w.packed, rows) + 3) / 4)
                func run(silu: Bool) -> Int32 {
                    x.withUnsafeBufferPointer { px in
                        y.withUnsafeMutableBufferPointer { po in
                            sg_linear_run(w.packed, px.baseAddress, rows, bias.map { $0.storage.pointer + $0.offset },
                                          silu ? 1 : 0, po.baseAddress, scratch.pointer)
                        }
                    }
                }
                // SiLU as oneDNN's post-op where it takes one (else applied below).
                var status = activation == .silu ? run(silu: true) : -1
                if status == 0 { return y }
                status = run(silu: false)
                withExtendedLifetime((scratch, bias)) {}
                precondition(status == 0, "linear: oneDNN failed (status \(status)) on x \(x.shape), weights [\(w.outFeatures), \(w.inFeatures)]")
            }
        }
        if activation == .silu { siluInPlace(&y) }
        return y
    }

    /// Whether the AMX kernel's tile instructions run emulated in C: where the machine does not run bf16 on them
    /// (tests).
    static let amxEmulated = Kernels.selection.bf16Linear != .amxTiles
    /// The AMX kernel: the tile instructions, or their emulation (`amxEmulated`).
    static let amxGEMM = amxEmulated ? sg_amx_gemm_emulated : sg_amx_gemm

    /// The rows of `x` rounded to bf16 in the AMX kernel's padded layout (`sg_amx_convert`, split over the workers).
    private static func amxRows(_ x: Tensor, rows: Int, k: Int) -> TensorStorage {
        let scratch = TensorStorage(uninitializedCount: (sg_amx_src_bytes(rows, k) + 3) / 4)
        let a = SendablePointer(UnsafeMutableRawPointer(scratch.pointer).assumingMemoryBound(to: UInt16.self))
        x.withUnsafeBufferPointer { px in
            let src = SendablePointer(UnsafeMutablePointer(mutating: px.baseAddress!))
            Parallel.forEachRange(rows, minChunk: Swift.max(1, 32_768 / k)) { r in
                sg_amx_convert(src.pointer, k, r.lowerBound, r.upperBound, rows, k, a.pointer)
            }
        }
        return scratch
    }

    /// `linear` on the AMX kernel into `out`: the rows rounded to bf16 once, then column blocks of 32 split over
    /// the workers (each streams its share of the weights once past the rows, which stay in its L2).
    private static func amxLinear(_ x: Tensor, rows: Int, weight w: LinearWeight, bias: Tensor?,
                                  activation: LinearActivation, into out: Tensor) {
        let k = w.inFeatures, n = w.outFeatures
        let start = DispatchTime.now().uptimeNanoseconds
        let scratch = amxRows(x, rows: rows, k: k)
        let a = SendablePointer(UnsafeMutableRawPointer(scratch.pointer).assumingMemoryBound(to: UInt16.self))
        let tiles = SendablePointer(w.tiles!)
        let biasPointer = bias.map { SendablePointer($0.storage.pointer + $0.offset) }
        let y = SendablePointer(out.storage.pointer)
        Parallel.forEachRange((n + 31) / 32, minChunk: 1) { blocks in
            amxGEMM(a.pointer, rows, k, tiles.pointer, n, biasPointer?.pointer, y.pointer, n, blocks.lowerBound,
                    blocks.upperBound, activation == .silu ? 1 : 0)
        }
        withExtendedLifetime((scratch, bias, w)) {}
        sg_gemm_time_add(Int64(DispatchTime.now().uptimeNanoseconds - start))
    }
}

extension Ops {
    /// GLUMBConv's first half on tokens `x [B, H·W, D]` of a `height × width` grid: `silu(x Wᵀ + bias)` (`[B, H·W,
    /// 2C]`), then `depthwiseConv3x3GLUChannelsLast` with `taps [9, 2C]` and `depthBias [2C]`; returns `[B, H·W, C]`.
    ///
    /// On the AMX kernel (2C a multiple of 64) it runs 32 output channels at a time: the product's value and gate
    /// blocks for them go to a small per-worker buffer in L2 and the depthwise conv and GLU run on it there
    /// (`sg_amx_glumb`), so the `[B, H·W, 2C]` product is never written to memory and read back — the largest
    /// tensor of a DiT block. Elsewhere the two steps run one after the other.
    public static func linearSiLUDepthwiseGLU(_ x: Tensor, weight w: LinearWeight, bias: Tensor?, height: Int, width: Int,
                                              taps: Tensor, depthBias: Tensor?) -> Tensor {
        let (k, n) = (w.inFeatures, w.outFeatures)
        let rows = x.shape.dropLast().reduce(1, *)
        guard w.mode == .amxTiles, n % 64 == 0, k > 0, x.rank == 3, x.shape[1] == height * width, rows > 0,
              taps.shape == [9, n], depthBias.map({ $0.count == n }) ?? true, bias.map({ $0.count == n }) ?? true
        else {
            let a = linear(x, weight: w, bias: bias, activation: .silu)
            return depthwiseConv3x3GLUChannelsLast(a, height: height, width: width, taps: taps, bias: depthBias)
        }
        let start = DispatchTime.now().uptimeNanoseconds
        let out = Tensor(uninitialized: [x.shape[0], height * width, n / 2])
        let scratch = amxRows(x, rows: rows, k: k)
        let a = SendablePointer(UnsafeMutableRawPointer(scratch.pointer).assumingMemoryBound(to: UInt16.self))
        let tiles = SendablePointer(w.tiles!), y = SendablePointer(out.storage.pointer)
        let biasPointer = bias.map { SendablePointer($0.storage.pointer + $0.offset) }
        let tapsPointer = SendablePointer(taps.storage.pointer + taps.offset)
        let depthBiasPointer = depthBias.map { SendablePointer($0.storage.pointer + $0.offset) }
        let emulated: Int32 = amxEmulated ? 1 : 0, isa = Kernels.selection.vectorISA.c
        Parallel.forEachRange(n / 64, minChunk: 1) { blocks in
            let buffer = TensorStorage(uninitializedCount: sg_amx_glumb_scratch_floats(rows))
            sg_amx_glumb(emulated, a.pointer, rows, k, tiles.pointer, n, biasPointer?.pointer, tapsPointer.pointer,
                         depthBiasPointer?.pointer, height, width, y.pointer, blocks.lowerBound, blocks.upperBound,
                         buffer.pointer, isa)
        }
        withExtendedLifetime((scratch, bias, w, taps, depthBias)) {}
        sg_gemm_time_add(Int64(DispatchTime.now().uptimeNanoseconds - start))
        return out
    }

    /// `linear` on weights kept as bf16 (`WeightKernel.storedBF16`) into `out`: each worker takes a share of the
    /// output columns and, one panel of ≤ 1024 outputs × 256 inputs at a time, decodes the weights into fp32 scratch
    /// (exact, 1 MiB of scratch per worker) and adds that panel's part of the product with OpenBLAS. Panels this
    /// size cost 1–5 % over fp32 weights in memory (Zen 3, Gemma-2-2B's shapes; docs/kernels-core.md).
    fileprivate static func storedBF16Linear(_ x: Tensor, rows: Int, weight w: LinearWeight, bias: Tensor?, into out: Tensor) {
        let (k, n) = (w.inFeatures, w.outFeatures)
        guard rows > 0 else { return }
        let start = DispatchTime.now().uptimeNanoseconds
        fillRows(out.storage.pointer, rows: rows, columns: n, bias: bias)
        let (panelColumns, panelDepth) = (1024, 256)
        // Column shares of a multiple of 16, one per worker (fewer when the layer is narrow).
        let shares = Swift.max(1, Swift.min(Parallel.workerCount, n / 16))
        let share = ((n + shares - 1) / shares + 15) / 16 * 16
        let bits = SendablePointer(UnsafeMutablePointer(mutating: w.stored!.bits)), y = SendablePointer(out.storage.pointer)
        x.withUnsafeBufferPointer { px in
            let a = SendablePointer(UnsafeMutablePointer(mutating: px.baseAddress!))
            Parallel.forEachRange(shares, minChunk: 1) { range in
                let scratch = TensorStorage(uninitializedCount: Swift.min(panelColumns, share) * Swift.min(panelDepth, k))
                for s in range {
                    let end = Swift.min(n, (s + 1) * share)
                    var n0 = s * share
                    while n0 < end {
                        let columns = Swift.min(panelColumns, end - n0)
                        var k0 = 0
                        while k0 < k {
                            let depth = Swift.min(panelDepth, k - k0)
                            for c in 0..<columns {
                                DTypeConversion.decodeSerial(.bf16, bits.pointer + (n0 + c) * k + k0, count: depth,
                                                             scratch.pointer + c * depth)
                            }
                            sgemm(transposeA: false, transposeB: true, m: rows, n: columns, k: depth, a: a.pointer + k0,
                                  lda: k, b: scratch.pointer, ldb: depth, beta: 1, c: y.pointer + n0, ldc: n)
                            k0 += depth
                        }
                        n0 += columns
                    }
                }
                withExtendedLifetime(scratch) {}
            }
        }
        withExtendedLifetime((w, bias)) {}
        sg_gemm_time_add(Int64(DispatchTime.now().uptimeNanoseconds - start))
    }
}

/// bfloat16 rounding (round to nearest, ties to even), kept in fp32 containers.
enum BF16 {
    /// `x` rounded to the nearest bf16 value (NaN stays NaN, infinities stay).
    @inline(__always)
    static func round(_ x: Float) -> Float {
        let bits = x.bitPattern
        if x.isNaN { return x }
        let rounded = bits &+ 0x7FFF &+ ((bits >> 16) & 1)
        return Float(bitPattern: rounded & 0xFFFF_0000)
    }

    /// A copy of `t` with every element rounded to bf16.
    static func rounded(_ t: Tensor) -> Tensor {
        let out = Tensor(uninitialized: t.shape)
        let src = SendablePointer(t.storage.pointer + t.offset), dst = SendablePointer(out.storage.pointer)
        Parallel.forEachRange(t.count, minChunk: 65_536) { range in
            for i in range { dst.pointer[i] = round(src.pointer[i]) }
        }
        return out
    }
}

/// A 2-D convolution's filter `[out, in/groups, kh, kw]`, bias and geometry, prepared once for this CPU's
/// kernels at a precision (`Ops.conv2d(_:_:)`).
///
/// fp32 runs SanaGraph's own convolutions (`Ops.conv2d`: Winograd, im2col, depthwise). bf16 applies to dense
/// convolutions (one group): packed bf16 for oneDNN where the CPU has a bf16 unit, rounded operands through
/// the fp32 paths when emulated; depthwise and grouped convolutions (a sliver of the work) stay fp32.
public final class ConvWeight: @unchecked Sendable {
    public let outChannels: Int, inChannels: Int, kernelHeight: Int, kernelWidth: Int
    public let stride: (Int, Int), padding: (Int, Int), groups: Int
    public let precision: Precision
    /// The kernel that runs it, e.g. "oneDNN brgconv:avx512_core_amx" or "SanaGraph fp32 (OpenBLAS Cooperlake)".
    public let kernel: String
    public let mode: WeightKernel
    /// fp32 (or bf16-rounded) filter for our own convolutions; nil when oneDNN holds the packed filter.
    let weight: Tensor?
    public let bias: Tensor?
    let packed: OpaquePointer?

    /// Prepares a filter; `typicalInput` (height, width) picks oneDNN's layout (it is checked for other sizes).
    public convenience init(_ weight: Tensor, bias: Tensor?, stride: Int = 1, padding: Int = 0, groups: Int = 1,
                            precision: Precision = .fp32, typicalInput: (Int, Int) = (64, 64)) {
        let effective = groups == 1 ? Kernels.effectivePrecision(precision).0 : .fp32
        self.init(weight, bias: bias, stride: (stride, stride), padding: (padding, padding), groups: groups,
                  precision: effective, mode: WeightKernel.choose(effective, conv: true), typicalInput: typicalInput)
    }

    /// Prepares a filter for a named kernel (benchmarks, tests); `.oneDNN` falls back when oneDNN cannot.
    public init(_ weight: Tensor, bias: Tensor?, stride: (Int, Int), padding: (Int, Int), groups: Int,
                precision: Precision, mode requested: WeightKernel, typicalInput: (Int, Int) = (64, 64)) {
        precondition(weight.rank == 4, "ConvWeight: expected [out, in/groups, kh, kw], got \(weight.shape)")
        let (outChannels, kernelHeight, kernelWidth) = (weight.shape[0], weight.shape[2], weight.shape[3])
        let inChannels = weight.shape[1] * groups
        (self.outChannels, self.inChannels, self.kernelHeight, self.kernelWidth) = (outChannels, inChannels, kernelHeight, kernelWidth)
        (self.stride, self.padding, self.groups, self.bias) = (stride, padding, groups, bias)
        // The AMX kernel and stored bf16 weights are for linear layers.
        var mode = requested == .amxTiles ? .oneDNN : requested == .storedBF16 ? .plain : requested
        var packed: OpaquePointer?
        var impl = [CChar](repeating: 0, count: 128), error = [CChar](repeating: 0, count: 256)
        if mode == .oneDNN {
            let (h, w) = (Swift.max(typicalInput.0, kernelHeight), Swift.max(typicalInput.1, kernelWidth))
            packed = weight.withUnsafeBufferPointer { pw in
                sg_conv_create(pw.baseAddress, bias.map { $0.storage.pointer + $0.offset }, outChannels, inChannels,
                               kernelHeight, kernelWidth, stride.0, stride.1, padding.0, padding.1, groups,
                               precision == .bf16 ? 1 : 0, h, w, &impl, impl.count, &error, error.count)
            }
            if packed == nil { mode = precision == .bf16 ? .emulatedBF16 : .plain }
        }
        self.mode = mode
        self.packed = packed
        self.precision = precision
        switch mode {
        case .oneDNN, .amxTiles: self.weight = nil
        case .plain, .storedBF16: self.weight = weight
        case .emulatedBF16: self.weight = BF16.rounded(weight)
        }
        let ours = "SanaGraph fp32 (OpenBLAS \(Kernels.selection.openBLASCore))"
        kernel = mode == .oneDNN ? "oneDNN " + String(cBuffer: impl) : mode == .plain ? ours : "bf16 emulation, \(ours)"
    }

    deinit { if let packed { sg_conv_destroy(packed) } }

    /// Bytes the filter and bias occupy.
    public var byteCount: Int { packed.map { sg_conv_bytes($0) } ?? (weight!.byteCount + (bias?.byteCount ?? 0)) }

    /// The kernel that runs an input of `batch × height × width`: `kernel`, or oneDNN's implementation for that
    /// size (a size whose fast kernel wants another filter layout gets the filter repacked for it), or our own
    /// convolution where oneDNN has only its reference code for that size.
    public func kernel(batch: Int = 1, height: Int, width: Int) -> String {
        guard let packed else { return kernel }
        var impl = [CChar](repeating: 0, count: 128)
        if sg_conv_impl(packed, batch, height, width, &impl, impl.count) != 0 {
            return "SanaGraph fp32 (OpenBLAS \(Kernels.selection.openBLASCore)), no oneDNN kernel for this size"
        }
        return "oneDNN " + String(cBuffer: impl)
    }

    /// The filter as fp32 `[out, in/groups, kh, kw]`, as the layer computes with it.
    public func unpacked() -> Tensor {
        if let weight { return weight }
        var out = Tensor(uninitialized: [outChannels, inChannels / groups, kernelHeight, kernelWidth])
        let status = out.withUnsafeMutableBufferPointer { sg_conv_unpack(packed, $0.baseAddress) }
        precondition(status == 0, "ConvWeight.unpacked: oneDNN failed (status \(status))")
        return out
    }
}

extension Ops {
    /// `torch.nn.functional.conv2d(x, weight, bias, stride, padding, groups=groups)` with a prepared filter.
    public static func conv2d(_ x: Tensor, _ w: ConvWeight) -> Tensor {
        switch w.mode {
        case .plain, .storedBF16:
            return conv2d(x, weight: w.weight!, bias: w.bias, stride: w.stride, padding: w.padding, groups: w.groups)
        case .emulatedBF16:
            return conv2d(BF16.rounded(x), weight: w.weight!, bias: w.bias, stride: w.stride, padding: w.padding,
                          groups: w.groups)
        case .oneDNN, .amxTiles:
            precondition(x.rank == 4 && x.shape[1] == w.inChannels,
                         "conv2d: x \(x.shape) does not match the filter's \(w.inChannels) input channels")
            let (n, h, wd) = (x.shape[0], x.shape[2], x.shape[3])
            let hout = (h + 2 * w.padding.0 - w.kernelHeight) / w.stride.0 + 1
            let wout = (wd + 2 * w.padding.1 - w.kernelWidth) / w.stride.1 + 1
            precondition(hout > 0 && wout > 0, "conv2d: kernel \(w.kernelHeight)×\(w.kernelWidth) does not fit input \(x.shape)")
            var out = Tensor(uninitialized: [n, w.outChannels, hout, wout])
            guard out.count > 0 else { return out }
            let bytes = sg_conv_scratch_bytes(w.packed, n, h, wd)
            if bytes < 0 {
                // oneDNN cannot run this size with the packed layout: the same arithmetic through our kernels.
                return conv2d(BF16.rounded(x), weight: w.unpacked(), bias: w.bias, stride: w.stride,
                              padding: w.padding, groups: w.groups)
            }
            let scratch = TensorStorage(uninitializedCount: (bytes + 3) / 4)
            let status = x.withUnsafeBufferPointer { px in
                out.withUnsafeMutableBufferPointer { sg_conv_run(w.packed, px.baseAddress, n, h, wd, $0.baseAddress, scratch.pointer) }
            }
            withExtendedLifetime(scratch) {}
            precondition(status == 0, "conv2d: oneDNN failed (status \(status)) on x \(x.shape)")
            return out
        }
    }
}

extension String {
    /// The NUL-terminated text in a C character buffer.
    init(cBuffer buffer: [CChar]) {
        self.init(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
