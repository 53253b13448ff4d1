import Foundation
import Safetensors
import Tensors
import Testing
import TestSupport

/// The corruption corpus: each case derives a broken file from a valid one at run time and checks that opening
/// it gives the right `SafetensorsError`, naming the file (and the tensor when one is at fault), with no crash.
@Suite struct CorruptionTests {
    enum Kind: Sendable { case header, tensor, unreadable }

    struct Corruption: Sendable, CustomStringConvertible {
        var description: String
        var kind: Kind
        /// The tensor the message must name (for `.tensor`).
        var tensor: String? = nil
        /// Text the reason must contain.
        var reason: String
        /// Makes the corrupt file bytes from the valid file's (header text, data bytes).
        var make: @Sendable (_ header: String, _ data: [UInt8]) -> [UInt8]
    }

    /// Valid file: a F32 [2,3] at [0,24], w BF16 [3,2] at [24,36], b F16 [4] at [36,44].
    static func validParts() throws -> (String, [UInt8]) {
        let dir = TestSupport.temporaryDirectory("st-corrupt")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("valid.safetensors").path
        try SafetensorsWriter.write(entries: [
            "a": .tensor(Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6]), .f32),
            "w": .tensor(Tensor(shape: [3, 2], values: [1, -1, 0.5, 2, 3, 4]), .bf16),
            "b": .tensor(Tensor(shape: [4], values: [0.25, 1, 2, 8]), .f16),
        ], to: path)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let n = Int(bytes[0]) | Int(bytes[1]) << 8
        let header = String(decoding: bytes[8..<(8 + n)], as: UTF8.self)
        return (header, Array(bytes[(8 + n)...]))
    }

    static func assemble(_ header: [UInt8], _ data: [UInt8], length: UInt64? = nil) -> [UInt8] {
        let n = length ?? UInt64(header.count)
        return (0..<8).map { UInt8(truncatingIfNeeded: n >> (8 * UInt64($0))) } + header + data
    }

    static func edit(_ old: String, _ new: String) -> @Sendable (String, [UInt8]) -> [UInt8] {
        { header, data in assemble(Array(header.replacingOccurrences(of: old, with: new).utf8), data) }
    }

    static let cases: [Corruption] = [
        Corruption(description: "truncated in the data section", kind: .tensor, tensor: "b", reason: "truncated") { h, d in
            Array(assemble(Array(h.utf8), d).dropLast(5))
        },
        Corruption(description: "truncated inside the length prefix", kind: .header, reason: "too short") { h, d in
            Array(assemble(Array(h.utf8), d).prefix(5))
        },
        Corruption(description: "empty file", kind: .header, reason: "0 bytes") { _, _ in [] },
        Corruption(description: "header length past EOF", kind: .header, reason: "runs past the end") { h, d in
            assemble(Array(h.utf8), d, length: UInt64(h.utf8.count + d.count + 1))
        },
        Corruption(description: "huge header length", kind: .header, reason: "exceeds") { h, d in
            assemble(Array(h.utf8), d, length: 1 << 62)
        },
        Corruption(description: "non-UTF-8 header", kind: .header, reason: "UTF-8") { h, d in
            var bytes = Array(h.utf8)
            bytes[bytes.count / 2] = 0xFF
            return assemble(bytes, d)
        },
        Corruption(description: "non-JSON header", kind: .header, reason: "not valid JSON") { h, d in
            assemble(Array(h.utf8.dropLast(12)), d)
        },
        Corruption(description: "JSON array instead of object", kind: .header, reason: "expected a JSON object") { _, d in
            assemble(Array("[1, 2, 3]".utf8), d)
        },
        Corruption(description: "deeply nested JSON", kind: .header, reason: "nested deeper") { _, d in
            assemble(Array(("{\"x\":" + String(repeating: "[", count: 100_000)).utf8), d)
        },
        Corruption(description: "unknown dtype", kind: .tensor, tensor: "b", reason: "unknown dtype 'F17'",
                   make: edit("\"dtype\":\"F16\"", "\"dtype\":\"F17\"")),
        Corruption(description: "dtype not a string", kind: .tensor, tensor: "b", reason: "'dtype' is an integer",
                   make: edit("\"dtype\":\"F16\"", "\"dtype\":16")),
        Corruption(description: "negative shape", kind: .tensor, tensor: "b", reason: "non-negative integers",
                   make: edit("\"shape\":[4]", "\"shape\":[-4]")),
        Corruption(description: "non-integer shape", kind: .tensor, tensor: "b", reason: "non-negative integers",
                   make: edit("\"shape\":[4]", "\"shape\":[4.0]")),
        Corruption(description: "boolean shape", kind: .tensor, tensor: "b", reason: "non-negative integers",
                   make: edit("\"shape\":[4]", "\"shape\":[true]")),
        Corruption(description: "shape product overflows", kind: .tensor, tensor: "b", reason: "too large",
                   make: edit("\"shape\":[4]", "\"shape\":[4611686018427387904,4]")),
        Corruption(description: "integer beyond Int64 in shape", kind: .header, reason: "out of range",
                   make: edit("\"shape\":[4]", "\"shape\":[99999999999999999999]")),
        Corruption(description: "shape/size mismatch", kind: .tensor, tensor: "b", reason: "needs 10 bytes",
                   make: edit("\"shape\":[4]", "\"shape\":[5]")),
        Corruption(description: "missing data_offsets", kind: .tensor, tensor: "b", reason: "missing 'data_offsets'",
                   make: edit(",\"data_offsets\":[36,44]", "")),
        Corruption(description: "three data_offsets", kind: .tensor, tensor: "b", reason: "two non-negative integers",
                   make: edit("[36,44]", "[36,44,52]")),
        Corruption(description: "begin after end", kind: .tensor, tensor: "b", reason: "begin after end",
                   make: edit("[36,44]", "[44,36]")),
        Corruption(description: "offsets out of range", kind: .tensor, tensor: "b", reason: "run past the end",
                   make: edit("[36,44]", "[1036,1044]")),
        Corruption(description: "overlapping offsets", kind: .tensor, tensor: "b", reason: "overlap tensor 'w'",
                   make: edit("[36,44]", "[30,38]")),
        Corruption(description: "tensor listed twice", kind: .tensor, tensor: "a", reason: "listed twice") { h, d in
            let dup = h.replacingOccurrences(of: "}}", with: "},\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}")
            return assemble(Array(dup.utf8), d)
        },
        Corruption(description: "entry not an object", kind: .tensor, tensor: "z", reason: "expected an object") { h, d in
            assemble(Array(h.replacingOccurrences(of: "{\"a\"", with: "{\"z\":7,\"a\"").utf8), d)
        },
        Corruption(description: "metadata value not a string", kind: .header, reason: "'__metadata__' key 'n'") { h, d in
            assemble(Array(h.replacingOccurrences(of: "{\"a\"", with: "{\"__metadata__\":{\"n\":1},\"a\"").utf8), d)
        },
    ]

    @Test(arguments: cases)
    func corruptFileGivesClearError(_ corruption: Corruption) throws {
        let (header, data) = try Self.validParts()
        let dir = TestSupport.temporaryDirectory("st-corrupt")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("broken.safetensors").path
        try Data(corruption.make(header, data)).write(to: URL(fileURLWithPath: path))

        let error = #expect(throws: SafetensorsError.self) { _ = try SafetensorsFile(path: path) }
        guard let error else { return }
        #expect(error.path == path)
        #expect(error.description.contains(path), "message does not name the file: \(error)")
        #expect(error.description.contains(corruption.reason), "expected '\(corruption.reason)' in: \(error)")
        switch (corruption.kind, error) {
        case (.header, .invalidHeader), (.unreadable, .unreadable): break
        case (.tensor, .invalidTensor(_, let tensor, _)):
            #expect(tensor == corruption.tensor)
            #expect(error.description.contains("'\(corruption.tensor ?? "")'"), "message does not name the tensor: \(error)")
        default: Issue.record("wrong error case for \(corruption): \(error)")
        }
        // A checkpoint opened on the same file reports the same error.
        #expect(throws: error) { _ = try SafetensorsCheckpoint(path: path) }
    }

    @Test func validBaseFileOpens() throws {
        let (header, data) = try Self.validParts()
        #expect(header.contains("\"b\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[36,44]}"))
        let dir = TestSupport.temporaryDirectory("st-corrupt")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("ok.safetensors").path
        try Data(Self.assemble(Array(header.utf8), data)).write(to: URL(fileURLWithPath: path))
        let f = try SafetensorsFile(path: path)
        #expect(try f.tensor("b").scalars == [0.25, 1, 2, 8])
        #expect(try f.tensor("w").scalars == [1, -1, 0.5, 2, 3, 4])
    }

    @Test func missingFileAndDirectoryAreUnreadable() throws {
        let dir = TestSupport.temporaryDirectory("st-corrupt")
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = dir.appendingPathComponent("nope.safetensors").path
        #expect(throws: SafetensorsError.unreadable(path: missing, reason: "no such file")) {
            _ = try SafetensorsFile(path: missing)
        }
        let error = #expect(throws: SafetensorsError.self) { _ = try SafetensorsFile(path: dir.path) }
        #expect(error?.description.contains("directory") == true)
    }

    @Test func unsupportedDTypeOpensButCannotBeConverted() throws {
        let dir = TestSupport.temporaryDirectory("st-corrupt")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("f64.safetensors").path
        let header = "{\"d\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]},"
            + "\"u\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[8,10]}}"
        try Data(Self.assemble(Array(header.utf8), [0, 0, 0, 0, 0, 0, 240, 63, 7, 9])).write(to: URL(fileURLWithPath: path))
        let f = try SafetensorsFile(path: path)
        #expect(f.contains("d") && f.unsupportedTensors == ["d": "F64"])
        #expect(try f.tensor("u").scalars == [7, 9])
        #expect(throws: SafetensorsError.unsupportedDType(path: path, tensor: "d", dtype: "F64")) { _ = try f.tensor("d") }
    }

    @Test func unalignedTensorDataDecodes() throws {
        // A 1-byte tensor first puts the F16, I32 and I64 data at odd offsets; the format allows that.
        let dir = TestSupport.temporaryDirectory("st-corrupt")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("odd.safetensors").path
        let header = "{\"m\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[0,1]},"
            + "\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[1,5]},"
            + "\"i\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[5,9]},"
            + "\"l\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[9,17]}}"
        let data: [UInt8] = [1, 0x00, 0x3C, 0x00, 0xC0, 0xFE, 0xFF, 0xFF, 0xFF, 5, 0, 0, 0, 0, 0, 0, 0]
        try Data(Self.assemble(Array(header.utf8), data)).write(to: URL(fileURLWithPath: path))
        let f = try SafetensorsFile(path: path)
        #expect(try f.tensor("m").scalars == [1])
        #expect(try f.tensor("h").scalars == [1, -2])
        #expect(try f.tensor("i").scalars == [-2])
        #expect(try f.tensor("l").scalars == [5])
    }
}
