import Foundation
import Safetensors
import Tensors
import Testing
import TestSupport

/// `tensor(_:releasingSource:)`: the loaders' read that drops the mapped source pages after converting.
@Suite struct ReleasingSourceTests {
    /// A BF16 file with one tensor large enough to be released (2 MiB) and one too small to be (8 bytes).
    static func file() throws -> String {
        let path = TestSupport.temporaryDirectory("st-release").appendingPathComponent("w.safetensors").path
        let big = Tensor(shape: [1024, 1024], values: (0..<(1 << 20)).map { Float($0 % 977) * 0.25 - 60 })
        let small = Tensor(shape: [4], values: [1, -2, 3.5, 0.125])
        try SafetensorsWriter.write(["big": big, "small": small], dtype: .bf16, to: path)
        return path
    }

    @Test func releasedTensorsEqualPlainReadsAndStayReadable() throws {
        let path = try Self.file()
        let checkpoint = try SafetensorsCheckpoint(path: path)
        for name in ["big", "small"] {
            let released = try checkpoint.tensor(name, releasingSource: true)
            // Read again after the release: the pages come back from the page cache with the same values.
            let again = try checkpoint.tensor(name)
            let raw = try checkpoint.rawBytes(name).decoded()
            #expect(released.shape == again.shape)
            #expect(released.withUnsafeBufferPointer { Array($0) } == again.withUnsafeBufferPointer { Array($0) })
            #expect(raw.withUnsafeBufferPointer { Array($0) } == again.withUnsafeBufferPointer { Array($0) })
        }
        let small = try SafetensorsFile(path: path).tensor("small", releasingSource: true)
        #expect(small.withUnsafeBufferPointer { Array($0) } == [1, -2, 3.5, 0.125])
    }

    @Test func releasingAMissingTensorNamesIt() throws {
        let checkpoint = try SafetensorsCheckpoint(path: try Self.file())
        let error = #expect(throws: SafetensorsError.self) { _ = try checkpoint.tensor("nope", releasingSource: true) }
        #expect(error?.description.contains("nope") == true)
    }

    @Test func rawBytesReleaseKeepsTheBytesReadable() throws {
        let raw = try SafetensorsFile(path: try Self.file()).rawBytes("big")
        let before = raw.decoded().withUnsafeBufferPointer { Array($0) }
        raw.releaseSourcePages()
        #expect(raw.decoded().withUnsafeBufferPointer { Array($0) } == before)
        #expect(before[977] == -60 && before[3] == -59.25)
    }

    @Test("raw bytes without read-ahead (a table gathered row by row) are the same bytes, from file and checkpoint")
    func rawBytesWithoutReadAhead() throws {
        let path = try Self.file()
        let plain = try SafetensorsFile(path: path).rawBytes("big").decoded().withUnsafeBufferPointer { Array($0) }
        let file = try SafetensorsFile(path: path).rawBytes("big", readAhead: false)
        let checkpoint = try SafetensorsCheckpoint(path: path).rawBytes("big", readAhead: false)
        #expect(file.dtype == .bf16 && file.shape == [1024, 1024])
        #expect(file.decoded().withUnsafeBufferPointer { Array($0) } == plain)
        #expect(checkpoint.decoded().withUnsafeBufferPointer { Array($0) } == plain)
    }
}
