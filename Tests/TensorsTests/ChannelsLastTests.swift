import CKernels
import Foundation
import Testing
import TestSupport
@testable import Tensors

/// layout.c on every path this CPU has, and the channels-last ops built on it. Layout changes move values and
/// round to bf16 (`sg_bf16_bits`), so they are checked exactly; the norm against double-precision sums.
@Suite("Channels-last layouts")
struct ChannelsLastTests {
    static var isas: [sg_isa] { [SG_ISA_PORTABLE] + (Kernels.selection.cpu.avx512Core ? [SG_ISA_AVX512] : []) }

    /// Values that exercise bf16 rounding: ties to even both ways, NaN, infinities, denormals, signed zeros.
    static func values(_ count: Int, seed: UInt64) -> [Float] {
        var r = SeededValues(seed: seed)
        var v = r.tensor([count], scale: 4).scalars
        let special: [Float] = [1 + 0x1p-8, 1 + 3 * 0x1p-8, -(1 + 0x1p-8), .nan, .infinity, -.infinity,
                                Float.leastNonzeroMagnitude, -1e-39, 0, -0.0, 3.0e38, 1 + 0x1p-8 + 0x1p-20]
        for (i, s) in special.enumerated() where i * 7 < count { v[i * 7] = s }
        return v
    }

    static func sameBits(_ a: Float, _ b: Float) -> Bool { a.bitPattern == b.bitPattern || (a.isNaN && b.isNaN) }

    /// VCVTNEPS2BF16: round to nearest even, NaN kept (quiet), denormal inputs to signed zero.
    static func bf16(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        if x.isNaN { return UInt16(bits >> 16) | 0x40 }
        if bits & 0x7f80_0000 == 0 { return UInt16(bits >> 16) & 0x8000 }
        return UInt16((bits &+ 0x7fff &+ ((bits >> 16) & 1)) >> 16)
    }

    @Test("NCHW → NHWC with its bf16 copy (rounded as VCVTNEPS2BF16) and back move every element, in pixel ranges",
          arguments: [(3, 5), (16, 16), (40, 300), (128, 133)])
    func transposes(_ c: Int, _ hw: Int) {
        let x = Self.values(c * hw, seed: UInt64(c * 1000 + hw))
        for isa in Self.isas {
            var f = [Float](repeating: .nan, count: c * hw), back = f
            var b = [UInt16](repeating: 0xffff, count: c * hw)
            // Ranges that start and end inside a 16- and a 64-pixel block.
            for (p0, p1) in [(0, min(hw, 7)), (min(hw, 7), min(hw, 70)), (min(hw, 70), hw)] {
                sg_nchw_to_nhwc(x, c, hw, p0, p1, &f, &b, isa)
            }
            for (p0, p1) in [(0, min(hw, 9)), (min(hw, 9), hw)] { sg_nhwc_to_nchw(f, c, hw, p0, p1, &back, isa) }
            var wrong = 0
            for p in 0..<hw {
                for ch in 0..<c {
                    let v = x[ch * hw + p]
                    if !Self.sameBits(f[p * c + ch], v) || b[p * c + ch] != Self.bf16(v) || !Self.sameBits(back[ch * hw + p], v) {
                        wrong += 1
                    }
                }
            }
            #expect(wrong == 0, "isa \(isa.rawValue) c \(c) hw \(hw): \(wrong) elements wrong")
        }
    }

    @Test("bf16 rounding, plain or of the SiLU kernel's output")
    func toBF16() {
        let x = Self.values(203, seed: 7)
        for isa in Self.isas {
            var silu = [Float](repeating: .nan, count: x.count)
            var plain = [UInt16](repeating: 0, count: x.count), activated = plain
            sg_silu(x, &silu, x.count, isa)
            sg_to_bf16(x, &plain, x.count, 0, isa)
            sg_to_bf16(x, &activated, x.count, 1, isa)
            #expect(zip(x, plain).allSatisfy { Self.bf16($0) == $1 }, "isa \(isa.rawValue)")
            #expect(zip(silu, activated).allSatisfy { Self.bf16($0) == $1 }, "isa \(isa.rawValue)")
        }
    }

    @Test("channel RMSNorm of channels-last pixels added to the residual in place, with its bf16 copy, matches double-precision sums",
          arguments: [(16, 37), (80, 130), (24, 20)])
    func addRMSNorm(_ c: Int, _ pixels: Int) {
        var r = SeededValues(seed: UInt64(c + pixels))
        let x = r.tensor([pixels, c], scale: 3).scalars, residual = r.tensor([pixels, c]).scalars
        let weight = r.tensor([c]).scalars, bias = r.tensor([c]).scalars
        for isa in Self.isas {
            for affine in [false, true] {
                var out = residual  // the sum replaces the residual
                var copy = [UInt16](repeating: 0, count: c * pixels)
                out.withUnsafeMutableBufferPointer { o in
                    for (p0, p1) in [(0, min(21, pixels)), (min(21, pixels), pixels)] {
                        sg_nhwc_add_rms_norm(x, o.baseAddress, affine ? weight : nil, affine ? bias : nil, c, p0, p1, 1e-5,
                                             o.baseAddress, &copy, isa)
                    }
                }
                var worst = 0.0
                for p in 0..<pixels {
                    let ms = (0..<c).reduce(0.0) { $0 + Double(x[p * c + $1]) * Double(x[p * c + $1]) } / Double(c)
                    for ch in 0..<c {
                        let at = p * c + ch
                        var want = Double(x[at]) / (ms + 1e-5).squareRoot()
                        if affine { want = want * Double(weight[ch]) + Double(bias[ch]) }
                        want += Double(residual[at])
                        worst = max(worst, abs(Double(out[at]) - want) / max(1, abs(want)))
                    }
                }
                #expect(worst <= 2e-6, "isa \(isa.rawValue) c \(c) affine \(affine): \(worst)")
                #expect(zip(out, copy).allSatisfy { Self.bf16($0) == $1 }, "isa \(isa.rawValue): the bf16 copy")
            }
        }
    }

    /// Whether bf16 convolutions run channels-last here (bf16 hardware, AVX-512, `SANAGRAPH_CHANNELS_LAST` on).
    static let channelsLastConvolutions: Bool = {
        var r = SeededValues(seed: 1)
        let w = ConvWeight(r.tensor([16, 16, 3, 3]), bias: nil, padding: 1, precision: .bf16)
        return w.runsChannelsLast(batch: 1, height: 8, width: 8)
    }()

    @Test("two ResBlocks kept channels-last (conv → SiLU → conv → RMSNorm + residual) equal the NCHW chain",
          .enabled(if: channelsLastConvolutions, "bf16 convolutions do not run channels-last on this CPU"),
          arguments: [(1, 32, 9, 13), (2, 16, 16, 16)])
    func resBlocks(_ n: Int, _ c: Int, _ h: Int, _ w: Int) {
        var r = SeededValues(seed: UInt64(c * h))
        let x = r.tensor([n, c, h, w])
        let blocks = (0..<2).map { _ in
            (ConvWeight(r.tensor([c, c, 3, 3], scale: 0.2), bias: r.tensor([c]), padding: 1, precision: .bf16),
             ConvWeight(r.tensor([c, c, 3, 3], scale: 0.2), bias: nil, padding: 1, precision: .bf16),
             r.tensor([c]), r.tensor([c]))
        }
        var (stream, input) = Ops.channelsLast(x, withBF16: true)
        var chain = x
        for (i, (conv1, conv2, weight, bias)) in blocks.enumerated() {
            let y = Ops.conv2d(Ops.siluBF16(Ops.conv2d(input!, conv1)), conv2)
            input = Ops.addChannelRMSNorm(y, weight: weight, bias: bias, eps: 1e-5, to: stream, bf16Copy: i == 0)
            var h1 = Ops.conv2d(chain, conv1)
            Ops.siluInPlace(&h1)
            chain = Ops.channelRMSNorm(Ops.conv2d(h1, conv2), weight: weight, bias: bias, eps: 1e-5, residual: chain)
        }
        #expect(input == nil)
        let fast = Ops.nchw(stream)
        #expect(fast.shape == chain.shape)
        // The norms sum in another order, so the second block's bf16 inputs may round the other way: bf16 scale.
        #expect(TestSupport.relativeError(fast, chain) <= 2e-3)
    }
}
