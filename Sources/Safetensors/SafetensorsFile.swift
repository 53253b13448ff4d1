import Foundation
import Tensors

// FIRST DRAFT (to be hardened by the Safetensors work: strict validation, mmap, sharding, atomic writer).

/// Errors reading or writing safetensors files. Every message names the file (and tensor when relevant).
public enum SafetensorsError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String, reason: String)
    case invalidHeader(path: String, reason: String)
    case invalidTensor(path: String, tensor: String, reason: String)
    case tensorNotFound(path: String, tensor: String, available: [String])
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let p, let r): return "\(p): cannot read safetensors file: \(r)"
        case .invalidHeader(let p, let r): return "\(p): corrupt safetensors header: \(r)"
        case .invalidTensor(let p, let t, let r): return "\(p): tensor '\(t)': \(r)"
        case .tensorNotFound(let p, let t, let a):
            return "\(p): no tensor named '\(t)' (the file has \(a.count): \(a.prefix(8).joined(separator: ", "))\(a.count > 8 ? ", …" : ""))"
        case .writeFailed(let p, let r): return "\(p): cannot write safetensors file: \(r)"
        }
    }
}

/// Where one tensor lives inside a file.
public struct TensorInfo: Sendable, Equatable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    /// Byte range relative to the start of the data section.
    public var dataOffsets: Range<Int>
}

/// A safetensors file opened for reading; tensors are read only when asked.
public final class SafetensorsFile: @unchecked Sendable {
    public let path: String
    public let tensors: [String: TensorInfo]
    public let metadata: [String: String]
    private let data: Data
    private let dataStart: Int

    public init(path: String) throws {
        self.path = path
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw SafetensorsError.unreadable(path: path, reason: (error as NSError).localizedDescription)
        }
        guard data.count >= 8 else { throw SafetensorsError.invalidHeader(path: path, reason: "file shorter than 8 bytes") }
        let headerLength = data.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        guard headerLength <= data.count - 8 else {
            throw SafetensorsError.invalidHeader(path: path, reason: "header length \(headerLength) runs past end of file")
        }
        dataStart = 8 + headerLength
        let header = data.subdata(in: 8..<dataStart)
        guard let json = try? JSONSerialization.jsonObject(with: header) as? [String: Any] else {
            throw SafetensorsError.invalidHeader(path: path, reason: "header is not a JSON object")
        }
        var infos: [String: TensorInfo] = [:]
        var meta: [String: String] = [:]
        for (name, value) in json {
            if name == "__metadata__" {
                meta = (value as? [String: String]) ?? [:]
                continue
            }
            guard let entry = value as? [String: Any],
                  let dtypeName = entry["dtype"] as? String,
                  let shape = entry["shape"] as? [Int],
                  let offsets = entry["data_offsets"] as? [Int], offsets.count == 2 else {
                throw SafetensorsError.invalidTensor(path: path, tensor: name, reason: "malformed header entry")
            }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw SafetensorsError.invalidTensor(path: path, tensor: name, reason: "unknown dtype \(dtypeName)")
            }
            infos[name] = TensorInfo(name: name, dtype: dtype, shape: shape, dataOffsets: offsets[0]..<offsets[1])
        }
        tensors = infos
        metadata = meta
    }

    public var names: [String] { tensors.keys.sorted() }

    /// Reads a tensor converted to fp32.
    public func tensor(_ name: String) throws -> Tensor {
        guard let info = tensors[name] else {
            throw SafetensorsError.tensorNotFound(path: path, tensor: name, available: names)
        }
        let out = Tensor(uninitialized: info.shape)
        let n = out.count
        data.withUnsafeBytes { raw in
            let base = raw.baseAddress! + dataStart + info.dataOffsets.lowerBound
            out.withUnsafeMutableBufferPointer { dst in
                switch info.dtype {
                case .f32: for i in 0..<n { dst[i] = base.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) }
                case .f16: for i in 0..<n { dst[i] = Float(base.loadUnaligned(fromByteOffset: 2 * i, as: Float16.self)) }
                case .bf16:
                    for i in 0..<n {
                        let bits = UInt32(base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16
                        dst[i] = Float(bitPattern: bits)
                    }
                case .i64: for i in 0..<n { dst[i] = Float(base.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)) }
                case .i32: for i in 0..<n { dst[i] = Float(base.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)) }
                case .u8, .bool: for i in 0..<n { dst[i] = Float(base.load(fromByteOffset: i, as: UInt8.self)) }
                }
            }
        }
        return out
    }
}

/// Writes fp32 tensors to a safetensors file.
public enum SafetensorsWriter {
    public static func write(_ tensors: [String: Tensor], metadata: [String: String] = [:], to path: String) throws {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        let names = tensors.keys.sorted()
        for name in names {
            let t = tensors[name]!
            header[name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + t.byteCount]]
            offset += t.byteCount
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while (json.count % 8) != 0 { json.append(0x20) }
        var out = Data()
        var len = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &len) { out.append(contentsOf: $0) }
        out.append(json)
        for name in names {
            tensors[name]!.withUnsafeBufferPointer { out.append(UnsafeBufferPointer(start: $0.baseAddress, count: $0.count)) }
        }
        do { try out.write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw SafetensorsError.writeFailed(path: path, reason: (error as NSError).localizedDescription)
        }
    }
}
