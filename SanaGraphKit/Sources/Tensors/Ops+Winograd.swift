// Winograd F(2×2, 3×3) convolution (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016)
// for dense 3×3, stride-1 convolutions. Each 2×2 block of outputs ("tile") is computed from the 4×4 input patch
// under it: `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`, summed over input channels. The sum over channels becomes 16
// independent GEMMs (one per position ξ of the 4×4 transformed patch), `M_ξ[Cout, tiles] = U_ξ[Cout, Cin] ·
// V_ξ[Cin, tiles]`, which do 16/36 of the multiplications of im2col + GEMM (4 instead of 9 per output pixel
// and input channel). The transforms only add, subtract and halve, so the error stays at fp32 rounding level
// (≤ 2e-6 relative to im2col in Tests/TensorsTests/ConvTests.swift; DC-AE decodes stay within 0.001/255 of PyTorch).
//
// Used by `Ops.conv2d` where the GEMMs stay large: DC-AE's high-resolution ResBlocks, where im2col + GEMM ran
// at small m (128–512 channels) and k = 9·Cin.

enum Winograd3x3 {
    /// Whether `Ops.conv2d` should take this path: 3×3, stride 1, no dilation, one group, and enough output
    /// tiles and channels that 16 GEMMs of k = Cin beat one of k = 9·Cin (the filter is transformed per call).
    static func isWorthwhile(_ g: ConvGeometry) -> Bool {
        return g.kh == 3 && g.kw == 3 && g.strideH == 1 && g.strideW == 1 && g.dilationH == 1 && g.dilationW == 1
            && g.groups == 1 && g.cin >= 16 && g.cout >= 16 && ((g.hout + 1) / 2) * ((g.wout + 1) / 2) >= 256
    }

    /// Transformed filter `U[ξ][o][i] = (G g_{o,i} Gᵀ)[ξ]`, 16 matrices of `[Cout, Cin]`.
    static func transformFilter(_ weight: UnsafePointer<Float>, cout: Int, cin: Int) -> TensorStorage {
        let u = TensorStorage(uninitializedCount: 16 * cout * cin)
        let pu = SendablePointer(u.pointer), pw = SendablePointer(UnsafeMutablePointer(mutating: weight))
        let stride = cout * cin
        Parallel.forEachRange(cout * cin, minChunk: 4_096) { range in
            for oi in range {
                let g = pw.pointer + oi * 9
                // t = G g (4×3), then U = t Gᵀ (4×4); G = [[1,0,0],[½,½,½],[½,−½,½],[0,0,1]].
                for r in 0..<4 {
                    func t(_ c: Int) -> Float {
                        let (g0, g1, g2) = (g[c], g[3 + c], g[6 + c])
                        switch r {
                        case 0: return g0
                        case 1: return 0.5 * (g0 + g1 + g2)
                        case 2: return 0.5 * (g0 - g1 + g2)
                        default: return g2
                        }
                    }
                    let (t0, t1, t2) = (t(0), t(1), t(2))
                    let base = pu.pointer + (4 * r) * stride + oi
                    base[0] = t0
                    base[stride] = 0.5 * (t0 + t1 + t2)
                    base[2 * stride] = 0.5 * (t0 - t1 + t2)
                    base[3 * stride] = t2
                }
            }
        }
        return u
    }

    /// `out = conv2d(x, weight, bias, padding)` for a geometry `isWorthwhile` accepted; `out` is `[N, Cout,
    /// Hout, Wout]`. Works through bands of tile rows so the transformed input and the GEMM outputs stay within
    /// about `maxBandFloats` each.
    static func conv(_ x: Tensor, _ weight: Tensor, _ bias: Tensor?, _ g: ConvGeometry, into out: Tensor,
                     maxBandFloats: Int = 1 << 22) {
        let u = transformFilter(weight.storage.pointer + weight.offset, cout: g.cout, cin: g.cin)
        let tilesH = (g.hout + 1) / 2, tilesW = (g.wout + 1) / 2
        let bandRows = Swift.max(1, Swift.min(tilesH, maxBandFloats / (16 * Swift.max(g.cin, g.cout) * tilesW)))
        let bandTiles = bandRows * tilesW
        let v = TensorStorage(uninitializedCount: 16 * g.cin * bandTiles)
        let m = TensorStorage(uninitializedCount: 16 * g.cout * bandTiles)
        let px = SendablePointer(x.storage.pointer + x.offset), po = SendablePointer(out.storage.pointer + out.offset)
        let pv = SendablePointer(v.pointer), pm = SendablePointer(m.pointer)
        let b = bias.map { SendablePointer($0.storage.pointer + $0.offset) }
        let inPlane = g.h * g.w, outPlane = g.hout * g.wout
        // Per thread: the four input rows under a tile row, split into even and odd columns (tilesW + 1 each),
        // or the four output vectors of a tile row (tilesW each).
        let lane = tilesW + 1

        for image in 0..<g.n {
            var ty0 = 0
            while ty0 < tilesH {
                let rows = Swift.min(bandRows, tilesH - ty0)
                let tiles = rows * tilesW
                let firstTileRow = ty0
                // V[ξ][ci][t] = (Bᵀ d B)[ξ] for the 4×4 patch d of channel ci under tile t.
                Parallel.forEachRange(g.cin, minChunk: Swift.max(1, 16_384 / Swift.max(1, tiles))) { channels in
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: 8 * lane) { scratch in
                        let s = scratch.baseAddress!
                        for ci in channels {
                            let plane = px.pointer + (image * g.cin + ci) * inPlane
                            for r in 0..<rows {
                                let iy0 = 2 * (firstTileRow + r) - g.padH
                                for k in 0..<4 {
                                    Self.loadSplitRow(plane, g, iy: iy0 + k, even: s + 2 * k * lane,
                                                      odd: s + (2 * k + 1) * lane, count: lane)
                                }
                                Self.transformInputRow(s, lane: lane, tilesW: tilesW,
                                                       into: pv.pointer + ci * bandTiles + r * tilesW,
                                                       stride: g.cin * bandTiles)
                            }
                        }
                    }
                }
                // The 16 GEMMs are independent: one per worker at a time, each on its own thread.
                let pu = SendablePointer(u.pointer)
                Parallel.forEachRange(16, minChunk: 1) { range in
                    for xi in range {
                        Ops.sgemm(transposeA: false, transposeB: false, m: g.cout, n: tiles, k: g.cin,
                                  a: pu.pointer + xi * g.cout * g.cin, lda: g.cin,
                                  b: pv.pointer + xi * g.cin * bandTiles, ldb: bandTiles, beta: 0,
                                  c: pm.pointer + xi * g.cout * bandTiles, ldc: bandTiles)
                    }
                }
                // Y = Aᵀ M A per tile, plus the bias.
                Parallel.forEachRange(g.cout, minChunk: Swift.max(1, 16_384 / Swift.max(1, tiles))) { channels in
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: 4 * lane) { scratch in
                        let y = scratch.baseAddress!
                        for co in channels {
                            let bias = b?.pointer[co] ?? 0
                            let dstPlane = po.pointer + (image * g.cout + co) * outPlane
                            for r in 0..<rows {
                                Self.transformOutputRow(pm.pointer + co * bandTiles + r * tilesW,
                                                        stride: g.cout * bandTiles, tilesW: tilesW, bias: bias,
                                                        scratch: y, lane: lane)
                                let oy = 2 * (firstTileRow + r)
                                Self.storeTileRow(y, lane: lane, g, oy: oy, into: dstPlane)
                            }
                        }
                    }
                }
                ty0 += rows
            }
        }
        withExtendedLifetime((u, v, m)) {}
    }

    /// Input row `iy` from column −padW on, split into `even[i]` = column 2i and `odd[i]` = column 2i + 1
    /// (`count` each), zero outside the input.
    @inline(__always)
    private static func loadSplitRow(_ plane: UnsafePointer<Float>, _ g: ConvGeometry, iy: Int,
                                     even: UnsafeMutablePointer<Float>, odd: UnsafeMutablePointer<Float>, count: Int) {
        guard iy >= 0 && iy < g.h else {
            even.update(repeating: 0, count: count)
            odd.update(repeating: 0, count: count)
            return
        }
        let row = plane + iy * g.w
        @inline(__always) func at(_ j: Int) -> Float { j >= 0 && j < g.w ? row[j] : 0 }
        // Both columns 2i − padW and 2i + 1 − padW inside the row for i in lo..<hi.
        let lo = Swift.min(count, (g.padW + 1) / 2)
        let hi = Swift.max(lo, Swift.min(count, (g.w + g.padW) / 2))
        for i in 0..<lo { even[i] = at(2 * i - g.padW); odd[i] = at(2 * i + 1 - g.padW) }
        let src = row - g.padW
        for i in lo..<hi { even[i] = src[2 * i]; odd[i] = src[2 * i + 1] }
        for i in hi..<count { even[i] = at(2 * i - g.padW); odd[i] = at(2 * i + 1 - g.padW) }
    }

    /// Bᵀ d B for every tile of one tile row, from the split rows of `loadSplitRow` (row k: even columns at
    /// 2k·lane, odd at (2k+1)·lane); Bᵀ = [[1,0,−1,0],[0,1,1,0],[0,−1,1,0],[0,1,0,−1]]. The patch of tile t has
    /// columns even[t], odd[t], even[t+1], odd[t+1], so 16 tiles at a time are plain vector operations.
    @inline(__always)
    private static func transformInputRow(_ s: UnsafePointer<Float>, lane: Int, tilesW: Int,
                                          into dst: UnsafeMutablePointer<Float>, stride: Int) {
        var t = 0
        while t < tilesW {
            let n = Swift.min(16, tilesW - t)
            @inline(__always) func column(_ k: Int, odd: Bool, next: Bool) -> Vector {
                loadVector(s + (2 * k + (odd ? 1 : 0)) * lane + t + (next ? 1 : 0), n)
            }
            // Bᵀ down the four rows of each patch column (e_t, o_t, e_t+1, o_t+1), then across.
            let e = (column(0, odd: false, next: false), column(1, odd: false, next: false),
                     column(2, odd: false, next: false), column(3, odd: false, next: false))
            let o = (column(0, odd: true, next: false), column(1, odd: true, next: false),
                     column(2, odd: true, next: false), column(3, odd: true, next: false))
            let f = (column(0, odd: false, next: true), column(1, odd: false, next: true),
                     column(2, odd: false, next: true), column(3, odd: false, next: true))
            let p = (column(0, odd: true, next: true), column(1, odd: true, next: true),
                     column(2, odd: true, next: true), column(3, odd: true, next: true))
            @inline(__always) func emit(_ q: Int, _ c0: Vector, _ c1: Vector, _ c2: Vector, _ c3: Vector) {
                let d = dst + 4 * q * stride + t
                storeVector(c0 - c2, d, n)
                storeVector(c1 + c2, d + stride, n)
                storeVector(c2 - c1, d + 2 * stride, n)
                storeVector(c1 - c3, d + 3 * stride, n)
            }
            emit(0, e.0 - e.2, o.0 - o.2, f.0 - f.2, p.0 - p.2)
            emit(1, e.1 + e.2, o.1 + o.2, f.1 + f.2, p.1 + p.2)
            emit(2, e.2 - e.1, o.2 - o.1, f.2 - f.1, p.2 - p.1)
            emit(3, e.1 - e.3, o.1 - o.3, f.1 - f.3, p.1 - p.3)
            t += n
        }
    }

    /// Aᵀ M A + bias for every tile of one tile row (Aᵀ = [[1,1,1,0],[0,1,−1,−1]]): the tile's output (0,0), (0,1),
    /// (1,0), (1,1) go to `y[0·lane + t]`, `y[1·lane + t]`, `y[2·lane + t]`, `y[3·lane + t]`.
    @inline(__always)
    private static func transformOutputRow(_ m: UnsafePointer<Float>, stride: Int, tilesW: Int, bias: Float,
                                           scratch y: UnsafeMutablePointer<Float>, lane: Int) {
        var t = 0
        while t < tilesW {
            let n = Swift.min(16, tilesW - t)
            @inline(__always) func at(_ xi: Int) -> Vector { loadVector(m + xi * stride + t, n) }
            // s_j = M rows 0 + 1 + 2 of column j, d_j = rows 1 − 2 − 3.
            let r1 = (at(4), at(5), at(6), at(7)), r2 = (at(8), at(9), at(10), at(11))
            let s = (at(0) + r1.0 + r2.0, at(1) + r1.1 + r2.1, at(2) + r1.2 + r2.2, at(3) + r1.3 + r2.3)
            let d = (r1.0 - r2.0 - at(12), r1.1 - r2.1 - at(13), r1.2 - r2.2 - at(14), r1.3 - r2.3 - at(15))
            let b = Vector(repeating: bias)
            storeVector(b + (s.0 + s.1 + s.2), y + t, n)
            storeVector(b + (s.1 - s.2 - s.3), y + lane + t, n)
            storeVector(b + (d.0 + d.1 + d.2), y + 2 * lane + t, n)
            storeVector(b + (d.1 - d.2 - d.3), y + 3 * lane + t, n)
            t += n
        }
    }

    /// Interleaves the tile outputs of `transformOutputRow` into output rows `oy` and `oy + 1`, leaving out the
    /// row and column past an odd-sized output.
    @inline(__always)
    private static func storeTileRow(_ y: UnsafePointer<Float>, lane: Int, _ g: ConvGeometry, oy: Int,
                                     into plane: UnsafeMutablePointer<Float>) {
        let pairs = g.wout / 2, odd = g.wout % 2 == 1
        @inline(__always) func interleave(_ first: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
            let second = first + lane
            for t in 0..<pairs {
                out[2 * t] = first[t]
                out[2 * t + 1] = second[t]
            }
            if odd { out[2 * pairs] = first[pairs] }
        }
        interleave(y, into: plane + oy * g.wout)
        if oy + 1 < g.hout { interleave(y + 2 * lane, into: plane + (oy + 1) * g.wout) }
    }

    typealias Vector = SIMD16<Float>

    @inline(__always)
    private static func loadVector(_ p: UnsafePointer<Float>, _ n: Int) -> Vector {
        if n == Vector.scalarCount { return UnsafeRawPointer(p).loadUnaligned(as: Vector.self) }
        var v = Vector()
        for i in 0..<n { v[i] = p[i] }
        return v
    }

    @inline(__always)
    private static func storeVector(_ v: Vector, _ p: UnsafeMutablePointer<Float>, _ n: Int) {
        if n == Vector.scalarCount {
            UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vector.self)
        } else {
            for i in 0..<n { p[i] = v[i] }
        }
    }
}
