import Foundation
import Safetensors
import Tensors
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The writer: format compatibility with Python, conversions, determinism and atomicity.
@Suite struct WriterTests {
    static func bytes(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }

    static func listing(_ dir: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
    }

    @Test func reproducesPythonWrittenFileByteForByte() throws {
        let source = TestSupport.fixture("Safetensors/python_written.safetensors")
        let py = try SafetensorsFile(path: source)
        let dir = TestSupport.temporaryDirectory("st-writer")
        defer { try? FileManager.default.removeItem(at: dir) }

        // From fp32 values re-encoded to each tensor's dtype (exercises every encoder and the header layout).
        var converted: [String: SafetensorsWriter.Entry] = [:]
        var raw: [String: SafetensorsWriter.Entry] = [:]
        for name in py.names {
            converted[name] = .tensor(try py.tensor(name), try py.info(name).dtype)
            raw[name] = .raw(try py.rawBytes(name))
        }
        #expect(py.names.count == 8)
        let a = dir.appendingPathComponent("converted.safetensors").path
        try SafetensorsWriter.write(entries: converted, metadata: py.metadata, to: a)
        #expect(try Self.bytes(a) == Self.bytes(source))
        let b = dir.appendingPathComponent("raw.safetensors").path
        try SafetensorsWriter.write(entries: raw, metadata: py.metadata, to: b)
        #expect(try Self.bytes(b) == Self.bytes(source))
    }

    @Test func f16AndBF16EncodingMatchesTorchRounding() throws {
        let fixture = try TestSupport.loadFixture("Safetensors/rounding.safetensors")
        let source = try fixture.tensor("source")
        let dir = TestSupport.temporaryDirectory("st-writer")
        defer { try? FileManager.default.removeItem(at: dir) }
        for (dtype, reference) in [(DType.f16, "source.f16"), (.bf16, "source.bf16")] {
            let path = dir.appendingPathComponent("\(dtype.rawValue).safetensors").path
            try SafetensorsWriter.write(["x": source], dtype: dtype, to: path)
            let ours = try SafetensorsFile(path: path)
            #expect(try ours.info("x").dtype == dtype)
            let mine = Array(try ours.rawBytes("x").bytes)
            let torch = Array(try fixture.rawBytes(reference).bytes)
            #expect(mine.count == source.count * 2)
            // Bitwise equality, except that any NaN matches any NaN: torch's vectorised conversion writes
            // 0xFFFF for NaN where its scalar one (and ours) writes the canonical quiet NaN 0x7FC0.
            let sourceValues = source.scalars
            var mismatches: [Int] = []
            for i in 0..<(mine.count / 2) where mine[2 * i] != torch[2 * i] || mine[2 * i + 1] != torch[2 * i + 1] {
                if sourceValues[i].isNaN && Self.isNaN16(mine[2 * i], mine[2 * i + 1], dtype)
                    && Self.isNaN16(torch[2 * i], torch[2 * i + 1], dtype) { continue }
                mismatches.append(i)
            }
            let first = mismatches.first ?? -1
            #expect(mismatches.isEmpty, "\(dtype): \(mismatches.count) values differ from torch, first at \(first)")
            // Also in memory, without a file.
            #expect(source.encoded(as: dtype) == mine)
        }
    }

    /// Whether little-endian bytes (lo, hi) are a NaN in F16 or BF16.
    static func isNaN16(_ lo: UInt8, _ hi: UInt8, _ dtype: DType) -> Bool {
        let bits = UInt16(lo) | UInt16(hi) << 8
        return dtype == .f16 ? Float16(bitPattern: bits).isNaN : DTypeConversion.float(fromBF16: bits).isNaN
    }

    @Test func f32RoundTripIsExactAndOutputIsDeterministic() throws {
        let dir = TestSupport.temporaryDirectory("st-writer")
        defer { try? FileManager.default.removeItem(at: dir) }
        var rng = SystemRandomNumberGenerator()
        let values = (0..<1000).map { _ in Float.random(in: -1e6...1e6, using: &rng) }
            + [0, -0.0, .infinity, -.infinity, .leastNonzeroMagnitude, .greatestFiniteMagnitude]
        let tensors = [
            "big": Tensor(shape: [2, 503], values: values),
            "scalar": Tensor(shape: [], values: [3]),
            "empty": Tensor(zeros: [0, 3]),
            "view": Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6]).reshaped([3, 2]),
        ]
        let p1 = dir.appendingPathComponent("a.safetensors").path
        let p2 = dir.appendingPathComponent("b.safetensors").path
        try SafetensorsWriter.write(tensors, metadata: ["k": "v\n\"q\""], to: p1)
        try SafetensorsWriter.write(tensors, metadata: ["k": "v\n\"q\""], to: p2)
        #expect(try Self.bytes(p1) == Self.bytes(p2))
        let f = try SafetensorsFile(path: p1)
        #expect(f.metadata == ["k": "v\n\"q\""])
        #expect(f.dataStart % 8 == 0)
        for (name, t) in tensors {
            let back = try f.tensor(name)
            #expect(back.shape == t.shape)
            #expect(back.scalars.map(\.bitPattern) == t.scalars.map(\.bitPattern), "\(name)")
        }
        #expect(try Self.listing(dir) == ["a.safetensors", "b.safetensors"])
    }

    @Test func replacingAFileLeavesNoTemporaryFilesAndKeepsItsMode() throws {
        let dir = TestSupport.temporaryDirectory("st-writer")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("w.safetensors").path
        try SafetensorsWriter.write(["x": Tensor(shape: [1], values: [1])], to: path)
        chmod(path, 0o600)
        try SafetensorsWriter.write(["x": Tensor(shape: [1], values: [2])], dtype: .bf16, to: path)
        #expect(try SafetensorsFile(path: path).tensor("x").scalars == [2])
        #expect(try Self.listing(dir) == ["w.safetensors"])
        let mode = (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? -1
        #expect(mode == 0o600)
    }

    @Test func failedWriteLeavesExistingFileUntouched() throws {
        let dir = TestSupport.temporaryDirectory("st-writer")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("w.safetensors").path
        try SafetensorsWriter.write(["x": Tensor(shape: [2], values: [1, 2])], to: path)
        let before = try Self.bytes(path)

        // Failure in the middle of writing (after the temporary file has data).
        let midway = SafetensorsError.writeFailed(path: path, reason: "simulated failure")
        #expect(throws: midway) {
            try AtomicFile.write(to: path) { sink throws(SafetensorsError) in
                try sink.write([1, 2, 3, 4, 5, 6, 7, 8, 9])
                throw midway
            }
        }
        // Reserved tensor name.
        #expect(throws: SafetensorsError.self) {
            try SafetensorsWriter.write(["__metadata__": Tensor(shape: [1], values: [0])], to: path)
        }
        #expect(try Self.bytes(path) == before)
        #expect(try Self.listing(dir) == ["w.safetensors"])
    }

    @Test func unwritableTargetsFailWithPathInMessage() throws {
        let dir = TestSupport.temporaryDirectory("st-writer")
        defer { try? FileManager.default.removeItem(at: dir) }
        let t = ["x": Tensor(shape: [1], values: [1])]

        // The target is a directory: it is left as is.
        let sub = dir.appendingPathComponent("sub.safetensors")
        try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: false)
        let e1 = #expect(throws: SafetensorsError.self) { try SafetensorsWriter.write(t, to: sub.path) }
        #expect(e1?.description.contains(sub.path) == true && e1?.description.contains("directory") == true)

        // The parent directory does not exist.
        let orphan = dir.appendingPathComponent("no/such/dir/x.safetensors").path
        let e2 = #expect(throws: SafetensorsError.self) { try SafetensorsWriter.write(t, to: orphan) }
        #expect(e2 == .writeFailed(path: orphan, reason: "directory '\(dir.path)/no/such/dir' does not exist"))

        // A directory where files cannot be created (read-only for non-root; /proc refuses even root).
        let readOnly = dir.appendingPathComponent("ro")
        try FileManager.default.createDirectory(at: readOnly, withIntermediateDirectories: false)
        let target = getuid() == 0 ? "/proc/self/x.safetensors" : readOnly.appendingPathComponent("x.safetensors").path
        chmod(readOnly.path, 0o555)
        defer { chmod(readOnly.path, 0o755) }
        let e3 = #expect(throws: SafetensorsError.self) { try SafetensorsWriter.write(t, to: target) }
        #expect(e3?.path == target && e3?.description.contains("cannot create a file") == true)
        #expect(try Self.listing(readOnly).isEmpty)
        #expect(try Self.listing(dir) == ["ro", "sub.safetensors"])
    }
}
