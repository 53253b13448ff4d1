import Foundation
import Safetensors
import Tensors
import Testing
import TestSupport

/// Bulk dtype conversion (Sources/Tensors/DTypeConversion.swift).
@Suite struct DTypeConversionTests {
    @Test func bf16RoundsToNearestEven() {
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1.0).
        #expect(DTypeConversion.bf16Bits(1 + 0x1p-8) == 0x3F80)
        // 1 + 3·2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even): rounds up.
        #expect(DTypeConversion.bf16Bits(1 + 3 * 0x1p-8) == 0x3F82)
        #expect(DTypeConversion.bf16Bits(1 + 0x1p-8 + 0x1p-20) == 0x3F81)
        #expect(DTypeConversion.bf16Bits(-2) == 0xC000)
        #expect(DTypeConversion.bf16Bits(.infinity) == 0x7F80)
        #expect(DTypeConversion.bf16Bits(.nan) == 0x7FC0)
        #expect(DTypeConversion.bf16Bits(.greatestFiniteMagnitude) == 0x7F80)  // rounds up to inf, like torch
        #expect(DTypeConversion.float(fromBF16: 0x3F82) == 1.015625)
    }

    @Test func integerEncodingTruncatesAndSaturatesWithoutTrapping() {
        let values: [Float] = [1.9, -1.9, .nan, 1e30, -1e30, 300, -3, 0.5, .infinity]
        let t = Tensor(shape: [values.count], values: values)
        func decoded(_ d: DType) -> [Float] {
            t.encoded(as: d).withUnsafeBytes { Tensor(decoding: $0.baseAddress!, dtype: d, shape: [values.count]).scalars }
        }
        #expect(decoded(.i64) == [1, -1, 0, Float(Int64.max), Float(Int64.min), 300, -3, 0, Float(Int64.max)])
        #expect(decoded(.i32) == [1, -1, 0, Float(Int32.max), Float(Int32.min), 300, -3, 0, Float(Int32.max)])
        #expect(decoded(.u8) == [1, 0, 0, 255, 0, 255, 0, 0, 255])
        #expect(decoded(.bool) == [1, 1, 1, 1, 1, 1, 1, 1, 1])
        #expect(Tensor(shape: [2], values: [0, -0.0]).encoded(as: .bool) == [0, 0])
    }

    @Test(arguments: [DType.f32, .f16, .bf16, .i64, .i32, .u8, .bool])
    func largeAndMisalignedBuffersMatchScalarConversion(dtype: DType) {
        // Big enough for the parallel path; decoded from an odd address to take the bounce-buffer path.
        let n = 300_001
        let values = (0..<n).map { i -> Float in
            let x = Float(i % 1000) * 0.37 - 150
            return dtype == .bool || dtype == .u8 ? Float(i % 3) : x
        }
        let t = Tensor(shape: [n], values: values)
        let bytes = t.encoded(as: dtype)
        #expect(bytes.count == n * dtype.size)
        let shifted = [0] + bytes
        let aligned = bytes.withUnsafeBytes { Tensor(decoding: $0.baseAddress!, dtype: dtype, shape: [n]) }
        let misaligned = shifted.withUnsafeBytes { Tensor(decoding: $0.baseAddress! + 1, dtype: dtype, shape: [n]) }
        // Compare by counting mismatches: a failing `==` on 300k-element arrays makes the diff output explode.
        func mismatches(_ a: [Float], _ b: [Float]) -> (count: Int, first: Int) {
            let bad = zip(a, b).enumerated().filter { $0.element.0.bitPattern != $0.element.1.bitPattern }
            return (bad.count + abs(a.count - b.count), bad.first?.offset ?? -1)
        }
        let m1 = mismatches(aligned.scalars, misaligned.scalars)
        #expect(m1.count == 0, "misaligned decode differs at \(m1.first)")
        let expected: [Float]
        switch dtype {
        case .f32: expected = values
        case .f16: expected = values.map { Float(Float16($0)) }
        case .bf16: expected = values.map { DTypeConversion.float(fromBF16: DTypeConversion.bf16Bits($0)) }
        case .i64, .i32: expected = values.map { $0.rounded(.towardZero) + 0 }  // + 0 turns -0 into 0
        case .u8: expected = values
        case .bool: expected = values.map { $0 != 0 ? 1 : 0 }
        }
        let m2 = mismatches(aligned.scalars, expected)
        #expect(m2.count == 0, "\(m2.count) values differ from the scalar conversion, first at \(m2.first)")

        // Encoding into a misaligned destination gives the same bytes.
        var out = [UInt8](repeating: 0, count: n * dtype.size + 1)
        out.withUnsafeMutableBytes { dst in
            t.withUnsafeBufferPointer { DTypeConversion.encode($0.baseAddress!, count: n, as: dtype, into: dst.baseAddress! + 1) }
        }
        #expect(Array(out.dropFirst()) == bytes, "misaligned encode differs")
    }
}
