import Foundation
import Testing
import TestSupport
@testable import Tensors

/// Prepared layers (`LinearWeight`, `ConvWeight`) on every kernel this machine has, against references computed
/// in double precision. Tolerances are fp32 rounding for fp32 layers; bf16 layers must equal the exact product
/// of bf16-rounded operands up to fp32 summation, which is what AMX, AVX512_BF16 and the emulation all compute.
@Suite("Prepared layer weights")
struct LayerWeightsTests {
    /// fp32 kernels here: SanaGraph's OpenBLAS path, and oneDNN when it loaded.
    static let fp32Modes: [WeightKernel] = Kernels.selection.oneDNNVersion == nil ? [.plain] : [.plain, .oneDNN]
    /// bf16 kernels here: the emulation, the AMX kernel (its tile instructions emulated without AMX), and
    /// oneDNN's when the CPU has a bf16 unit.
    static let bf16Modes: [WeightKernel] = {
        if case .native = Kernels.selection.bf16 { return [.emulatedBF16, .amxTiles, .oneDNN] }
        return [.emulatedBF16, .amxTiles]
    }()

    /// `x Wᵀ + b` in double from the given (already rounded, for bf16) operands.
    static func reference(_ x: [Float], _ w: [Float], _ b: [Float]?, rows: Int, n: Int, k: Int) -> Tensor {
        var out = [Float](repeating: 0, count: rows * n)
        for i in 0..<rows {
            for j in 0..<n {
                var s = Double(b?[j] ?? 0)
                for p in 0..<k { s += Double(x[i * k + p]) * Double(w[j * k + p]) }
                out[i * n + j] = Float(s)
            }
        }
        return Tensor(shape: [rows, n], values: out)
    }

    static func round(_ v: [Float]) -> [Float] { v.map(BF16.round) }

    @Test("fp32 linear layers equal the double-precision product within fp32 rounding, for several row counts",
          arguments: fp32Modes)
    func fp32Linear(mode: WeightKernel) {
        var rng = SeededValues(seed: 70)
        let (n, k) = (96, 200)
        let w = rng.tensor([n, k]), b = rng.tensor([n])
        let layer = LinearWeight(w, precision: .fp32, mode: mode)
        #expect(layer.mode == mode && layer.precision == .fp32)
        for rows in [1, 7, 130] {
            let x = rng.tensor([rows, k])
            let y = Ops.linear(x, weight: layer, bias: b)
            let ref = Self.reference(x.scalars, w.scalars, b.scalars, rows: rows, n: n, k: k)
            #expect(TestSupport.relativeError(y, ref) <= 2e-6, "\(mode) rows \(rows)")
        }
        #expect(layer.unpacked().scalars == w.scalars)
    }

    @Test("bf16 linear layers compute bf16 products with fp32 sums: exact against rounded operands, ~1e-3 from fp32",
          arguments: bf16Modes)
    func bf16Linear(mode: WeightKernel) {
        var rng = SeededValues(seed: 71)
        let (rows, n, k) = (33, 80, 300)
        let x = rng.tensor([2, rows, k]), w = rng.tensor([n, k]), b = rng.tensor([n])
        let layer = LinearWeight(w, precision: .bf16, mode: mode)
        #expect(layer.mode == mode && layer.precision == .bf16)
        let y = Ops.linear(x, weight: layer, bias: b)
        #expect(y.shape == [2, rows, n])
        let flat = y.reshaped([2 * rows, n])
        let exact = Self.reference(Self.round(x.scalars), Self.round(w.scalars), b.scalars, rows: 2 * rows, n: n, k: k)
        let fp32 = Self.reference(x.scalars, w.scalars, b.scalars, rows: 2 * rows, n: n, k: k)
        #expect(TestSupport.relativeError(flat, exact) <= 1e-5, "\(mode)")
        let fromFP32 = TestSupport.relativeError(flat, fp32)
        #expect(fromFP32 > 1e-4 && fromFP32 < 2e-2, "\(mode): \(fromFP32) from the fp32 product")
        #expect(layer.unpacked().scalars == Self.round(w.scalars))
        if mode != .emulatedBF16 { #expect(layer.byteCount < w.byteCount) }
    }

    // (130, 40, 12 300) is deep enough (1.5 MiB of bf16 rows per pass) for passes of 32 rows over two column
    // blocks, with the next block's weights prefetched across passes; (3, 5, 0) has no inputs (y = bias).
    @Test("the AMX kernel's tiles, blocks, padding and row passes: row, column and depth counts off its 16/32 grid, with and without bias",
          arguments: [(1, 1, 1), (5, 33, 32), (37, 45, 100), (77, 96, 64), (300, 70, 40), (130, 40, 12_300), (3, 5, 0)])
    func amxTileEdges(rows: Int, n: Int, k: Int) {
        var rng = SeededValues(seed: 95)
        let x = rng.tensor([rows, k]), w = rng.tensor([n, k]), b = rng.tensor([n])
        let layer = LinearWeight(w, precision: .bf16, mode: .amxTiles)
        #expect(layer.mode == .amxTiles)
        #expect(layer.unpacked().scalars == Self.round(w.scalars))
        let (rx, rw) = (Self.round(x.scalars), Self.round(w.scalars))
        for bias in [b, nil] {
            let y = Ops.linear(x, weight: layer, bias: bias)
            let exact = Self.reference(rx, rw, bias?.scalars, rows: rows, n: n, k: k)
            #expect(y.shape == [rows, n] && TestSupport.relativeError(y, exact) <= 1e-5, "bias \(bias != nil)")
        }
    }

    @Test("a linear layer with SiLU gives SiLU of its output on every kernel (fused into the AMX kernel's stores and oneDNN's post-op)",
          arguments: fp32Modes.map { (Precision.fp32, $0) } + bf16Modes.map { (Precision.bf16, $0) })
    func siluActivation(precision: Precision, mode: WeightKernel) {
        var rng = SeededValues(seed: 96)
        let (rows, n, k) = (45, 70, 64)
        let x = rng.tensor([rows, k]).scalars.map { $0 * 4 }, w = rng.tensor([n, k]), b = rng.tensor([n])
        let input = Tensor(shape: [rows, k], values: x)
        let layer = LinearWeight(w, precision: precision, mode: mode)
        let fused = Ops.linear(input, weight: layer, bias: b, activation: .silu)
        let separate = Ops.silu(Ops.linear(input, weight: layer, bias: b))
        #expect(fused.shape == [rows, n] && TestSupport.relativeError(fused, separate) <= 1e-6, "\(precision) \(mode)")
        #expect(fused.scalars.contains { $0 < 0 } && fused.scalars.contains { $0 > 1 })  // both sides of SiLU exercised
    }

    @Test("a bf16 request follows the machine's bf16 path; inside withBF16 the emulation is used on any CPU")
    func bf16RequestFollowsThePath() {
        let w = Tensor(repeating: 0.1, shape: [8, 8])
        let layer = LinearWeight(w, precision: .bf16)
        switch Kernels.selection.bf16 {
        case .native:
            #expect(layer.precision == .bf16 && layer.mode == (Kernels.selection.bf16Linear == .amxTiles ? .amxTiles : .oneDNN))
        case .emulated: #expect(layer.precision == .bf16 && layer.mode == .emulatedBF16)
        case .unavailable: #expect(layer.precision == .fp32)
        }
        let emulated = Kernels.withBF16(.emulated) { LinearWeight(w, precision: .bf16) }
        #expect(emulated.precision == .bf16 && emulated.mode == .emulatedBF16)
        let off = Kernels.withBF16(.unavailable(reason: "test")) { (LinearWeight(w, precision: .bf16), Kernels.effectivePrecision(.bf16)) }
        #expect(off.0.precision == .fp32 && off.1.0 == .fp32 && off.1.warning?.contains("test") == true)
    }

    /// conv2d in double: `x [1, C, H, W]`, `w [O, C, kh, kw]`.
    static func convReference(_ x: Tensor, _ w: [Float], _ b: [Float], cout: Int, kernel: Int, stride: Int, pad: Int) -> Tensor {
        let (c, h, wd) = (x.shape[1], x.shape[2], x.shape[3])
        let ho = (h + 2 * pad - kernel) / stride + 1, wo = (wd + 2 * pad - kernel) / stride + 1
        let xs = x.scalars
        var out = [Float](repeating: 0, count: cout * ho * wo)
        for o in 0..<cout {
            for oy in 0..<ho {
                for ox in 0..<wo {
                    var s = Double(b[o])
                    for ci in 0..<c {
                        for ky in 0..<kernel {
                            for kx in 0..<kernel {
                                let iy = oy * stride + ky - pad, ix = ox * stride + kx - pad
                                guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
                                s += Double(xs[(ci * h + iy) * wd + ix]) * Double(w[((o * c + ci) * kernel + ky) * kernel + kx])
                            }
                        }
                    }
                    out[(o * ho + oy) * wo + ox] = Float(s)
                }
            }
        }
        return Tensor(shape: [1, cout, ho, wo], values: out)
    }

    @Test("convolution layers (3×3, 3×3 stride 2, 1×1) on every kernel, fp32 and bf16, against double precision",
          arguments: [(3, 1, 1), (3, 2, 1), (1, 1, 0)])
    func convolutions(kernel: Int, stride: Int, pad: Int) {
        var rng = SeededValues(seed: UInt64(80 + kernel * 3 + stride))
        let (c, o) = (24, 20)
        let x = rng.tensor([1, c, 19, 23]), w = rng.tensor([o, c, kernel, kernel]), b = rng.tensor([o])
        let fp32Ref = Self.convReference(x, w.scalars, b.scalars, cout: o, kernel: kernel, stride: stride, pad: pad)
        for mode in Self.fp32Modes {
            let layer = ConvWeight(w, bias: b, stride: (stride, stride), padding: (pad, pad), groups: 1, precision: .fp32,
                                   mode: mode)
            #expect(TestSupport.relativeError(Ops.conv2d(x, layer), fp32Ref) <= 2e-6, "fp32 \(mode)")
        }
        let bf16Ref = Self.convReference(Tensor(shape: x.shape, values: Self.round(x.scalars)), Self.round(w.scalars),
                                         b.scalars, cout: o, kernel: kernel, stride: stride, pad: pad)
        for mode in Self.bf16Modes {
            let layer = ConvWeight(w, bias: b, stride: (stride, stride), padding: (pad, pad), groups: 1, precision: .bf16,
                                   mode: mode)
            let y = Ops.conv2d(x, layer)
            #expect(TestSupport.relativeError(y, bf16Ref) <= 1e-5, "bf16 \(mode)")
            #expect(TestSupport.relativeError(y, fp32Ref) > 1e-4, "bf16 \(mode) must round its operands")
            #expect(layer.unpacked().scalars == Self.round(w.scalars))
            // A second input size reuses the packed filter.
            let x2 = rng.tensor([2, c, 9, 12])
            let ref2 = Ops.conv2d(BF16.rounded(x2), weight: BF16.rounded(w), bias: b, stride: stride, padding: pad)
            #expect(TestSupport.relativeError(Ops.conv2d(x2, layer), ref2) <= 1e-5, "bf16 \(mode), batch 2")
        }
    }

    @Test("weights stored as bf16 pack straight into oneDNN's or the AMX kernel's layout: the same layer as from their fp32 decoding")
    func bf16Source() throws {
        var rng = SeededValues(seed: 94)
        let (n, k) = (96, 200)
        let w = Tensor(shape: [n, k], values: Self.round(rng.tensor([n, k]).scalars))  // bf16-representable
        let bits = w.scalars.map { UInt16($0.bitPattern >> 16) }
        let x = rng.tensor([37, k])
        for precision in [Precision.fp32, .bf16] {
            let fromBits = bits.withUnsafeBytes {
                LinearWeight(bf16Weights: $0.baseAddress!, outFeatures: n, inFeatures: k, precision: precision)
            }
            let reference = LinearWeight(w, precision: precision)
            guard reference.mode == .oneDNN || reference.mode == .amxTiles else { #expect(fromBits == nil); continue }
            // oneDNN 2.6 packs bf16 with JIT code only on AVX-512 CPUs; elsewhere the caller decodes first.
            if reference.mode == .oneDNN && fromBits == nil && !Kernels.selection.cpu.avx512Core { continue }
            let layer = try #require(fromBits)
            #expect(layer.precision == reference.precision && layer.kernel == reference.kernel)
            #expect(layer.unpacked().scalars == w.scalars)
            #expect(Ops.linear(x, weight: layer, bias: nil).scalars == Ops.linear(x, weight: reference, bias: nil).scalars)
        }
        // The AMX layout on any CPU (emulated tiles without AMX; bf16 requests honoured even where bf16 is off).
        let tiles = try #require(Kernels.withBF16(.emulated) {
            bits.withUnsafeBytes {
                LinearWeight(bf16Weights: $0.baseAddress!, outFeatures: n, inFeatures: k, precision: .bf16, mode: .amxTiles)
            }
        })
        let reference = LinearWeight(w, precision: .bf16, mode: .amxTiles)
        #expect(tiles.mode == .amxTiles && tiles.unpacked().scalars == w.scalars)
        #expect(Ops.linear(x, weight: tiles, bias: nil).scalars == Ops.linear(x, weight: reference, bias: nil).scalars)
    }

    @Test("fp32 layers on bf16 weights kept as stored: the double-precision product within fp32 rounding, across panel edges",
          arguments: [(1, 96, 200), (7, 1030, 300), (130, 37, 53), (300, 2064, 520)])
    func storedBF16Linear(rows: Int, n: Int, k: Int) throws {
        var rng = SeededValues(seed: 95)
        // Panels are 1024 outputs × 256 inputs within a worker's share: 1030, 2064 and 520 cross their edges.
        let w = Self.round(rng.tensor([n, k]).scalars), b = rng.tensor([n]), x = rng.tensor([rows, k])
        let bits = w.map { UInt16($0.bitPattern >> 16) }
        let storage = TensorStorage(uninitializedCount: (bits.count + 1) / 2)  // what keeps the "mapping" alive
        let raw = UnsafeMutableRawPointer(storage.pointer)
        bits.withUnsafeBytes { raw.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        let layer = try #require(LinearWeight(storedBF16: raw, outFeatures: n, inFeatures: k, owner: storage))
        #expect(layer.mode == .storedBF16 && layer.precision == .fp32 && layer.byteCount == n * k * 2)
        #expect(layer.unpacked().scalars == w)
        let ref = Self.reference(x.scalars, w, b.scalars, rows: rows, n: n, k: k)
        #expect(TestSupport.relativeError(Ops.linear(x, weight: layer, bias: b), ref) <= 2e-6)
        let noBias = Self.reference(x.scalars, w, nil, rows: rows, n: n, k: k)
        #expect(TestSupport.relativeError(Ops.linear(x.reshaped([1, rows, k]), weight: layer, bias: nil).reshaped([rows, n]),
                                          noBias) <= 2e-6)
        #expect(LinearWeight(storedBF16: raw + 1, outFeatures: n, inFeatures: k, owner: storage) == nil)  // misaligned
    }

    @Test("layers prepared on one thread give the same results from many threads at once (oneDNN scratchpads)")
    func concurrentUse() throws {
        var rng = SeededValues(seed: 93)
        var cases: [(LinearWeight, Tensor, Tensor)] = []  // layer, input, its result on this thread
        var kinds = [(Precision, WeightKernel)]()
        if Self.fp32Modes.contains(.oneDNN) { kinds.append((.fp32, .oneDNN)) }
        if Self.bf16Modes.contains(.oneDNN) { kinds.append((.bf16, .oneDNN)) }
        if Kernels.selection.bf16Linear == .amxTiles { kinds.append((.bf16, .amxTiles)) }  // real tiles only: emulation is slow
        for (precision, mode) in kinds {
            for (rows, k, n) in [(300, 1152, 1152), (77, 2880, 640), (512, 256, 1536)] {
                let layer = LinearWeight(rng.tensor([n, k]), precision: precision, mode: mode)
                let x = rng.tensor([rows, k])
                cases.append((layer, x, Ops.linear(x, weight: layer, bias: nil)))
            }
        }
        guard !cases.isEmpty else { return }  // no oneDNN or AMX here
        let all = cases
        let worst = Locked<Float>(0)
        let done = DispatchGroup()
        for t in 0..<8 {  // fresh threads, none of which made a primitive
            done.enter()
            Thread.detachNewThread {
                for round in 0..<3 {
                    for i in (0..<all.count).map({ ($0 + t + round) % all.count }) {
                        let (layer, x, expected) = all[i]
                        let error = TestSupport.relativeError(Ops.linear(x, weight: layer, bias: nil), expected)
                        worst.withLock { $0 = max($0, error) }
                    }
                }
                done.leave()
            }
        }
        done.wait()
        #expect(worst.withLock { $0 } <= 1e-6, "a result computed on another thread differs")
    }

    @Test("a bf16 filter packed for one input size runs fast kernels at others, not oneDNN's reference code")
    func bf16FilterAtOtherSizes() throws {
        // DC-AE's attention projection 1024 → 3072: blocked by 48 for 64×64 inputs, oneDNN 2.6 had only its
        // reference code for that layout at 16×16 and 32×32 (30 s instead of tens of ms per call).
        guard case .native = Kernels.selection.bf16 else { return }
        var rng = SeededValues(seed: 91)
        let (c, o) = (1024, 3072)
        let w = Tensor(shape: [o, c, 1, 1], values: rng.tensor([o, c]).scalars.map { $0 * 0.03 })
        let b = rng.tensor([o])
        let layer = ConvWeight(w, bias: b, stride: (1, 1), padding: (0, 0), groups: 1, precision: .bf16, mode: .oneDNN,
                               typicalInput: (64, 64))
        try #require(layer.mode == .oneDNN)
        for size in [16, 32, 64] {
            let kernel = layer.kernel(height: size, width: size)
            #expect(!kernel.contains("ref"), "\(size)×\(size): \(kernel)")
            let x = rng.tensor([1, c, size, size])
            let ref = Ops.conv2d(BF16.rounded(x), weight: BF16.rounded(w), bias: b)
            #expect(TestSupport.relativeError(Ops.conv2d(x, layer), ref) <= 1e-5, "\(size)×\(size) on \(kernel)")
        }
    }

    @Test("bf16 rounding is round-to-nearest-even on the upper 16 bits")
    func bf16Rounding() {
        #expect(BF16.round(1) == 1)
        #expect(BF16.round(Float(bitPattern: 0x3F80_8000)) == 1)                          // tie → even (down)
        #expect(BF16.round(Float(bitPattern: 0x3F81_8000)) == Float(bitPattern: 0x3F82_0000))  // tie → even (up)
        #expect(BF16.round(Float(bitPattern: 0x3F80_8001)) == Float(bitPattern: 0x3F81_0000))
        #expect(BF16.round(.infinity) == .infinity && BF16.round(.nan).isNaN)
    }
}
