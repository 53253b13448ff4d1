import Tensors

/// Where one tensor lives inside a file.
public struct TensorInfo: Sendable, Equatable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    /// Byte range relative to the start of the data section.
    public var dataOffsets: Range<Int>

    public init(name: String, dtype: DType, shape: [Int], dataOffsets: Range<Int>) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.dataOffsets = dataOffsets
    }

    /// Number of elements.
    public var elementCount: Int { shape.reduce(1, *) }
    /// Bytes the stored tensor occupies.
    public var byteCount: Int { dataOffsets.count }
}

/// The validated header of a safetensors file.
struct SafetensorsHeader {
    /// Largest header accepted, as the Rust implementation does (100 MB).
    static let maxHeaderLength = 100_000_000

    var tensors: [String: TensorInfo]
    /// Tensors in a dtype of the format that has no conversion here: name → dtype.
    var unsupported: [String: String]
    var metadata: [String: String]
    /// Offset of the data section in the file (8 + header length).
    var dataStart: Int

    /// Validates the raw file bytes' header. `bytes` is the whole file (mapped).
    static func parse(path: String, bytes: UnsafeRawBufferPointer) throws(SafetensorsError) -> SafetensorsHeader {
        let fileSize = bytes.count
        guard fileSize >= 8 else {
            throw .invalidHeader(path: path, reason: "the file is \(fileSize) bytes, too short to hold the 8-byte "
                                 + "header length; it is truncated or not a safetensors file")
        }
        var raw: UInt64 = 0
        for k in 0..<8 { raw |= UInt64(bytes[k]) << (8 * UInt64(k)) }
        guard raw <= UInt64(maxHeaderLength) else {
            throw .invalidHeader(path: path, reason: "header length \(raw) exceeds the \(maxHeaderLength)-byte limit; "
                                 + "this is not a safetensors file")
        }
        let headerLength = Int(raw)
        guard headerLength <= fileSize - 8 else {
            throw .invalidHeader(path: path, reason: "header length \(headerLength) runs past the end of the file "
                                 + "(\(fileSize) bytes); the file is truncated")
        }
        let dataStart = 8 + headerLength
        let dataSize = fileSize - dataStart
        let headerBytes = UnsafeRawBufferPointer(rebasing: bytes[8..<dataStart])
        guard String(validating: headerBytes, as: UTF8.self) != nil else {
            throw .invalidHeader(path: path, reason: "header is not valid UTF-8")
        }
        let json: JSONValue
        do {
            json = try JSONParser.parse(Array(headerBytes))
        } catch {
            throw .invalidHeader(path: path, reason: "header is not valid JSON: \(error)")
        }
        guard case .object(let members) = json else {
            throw .invalidHeader(path: path, reason: "header is \(json.kindName), expected a JSON object")
        }

        var tensors: [String: TensorInfo] = [:]
        var unsupported: [String: String] = [:]
        var metadata: [String: String] = [:]
        var seen = Set<String>()
        // (begin, end, name) of every tensor, for the overlap check.
        var spans: [(Int, Int, String)] = []
        spans.reserveCapacity(members.count)

        for (name, value) in members {
            guard seen.insert(name).inserted else {
                throw name == "__metadata__"
                    ? .invalidHeader(path: path, reason: "'__metadata__' appears twice")
                    : .invalidTensor(path: path, tensor: name, reason: "listed twice in the header")
            }
            if name == "__metadata__" {
                metadata = try parseMetadata(path: path, value)
                continue
            }
            func bad(_ reason: String) -> SafetensorsError { .invalidTensor(path: path, tensor: name, reason: reason) }
            guard case .object(let fields) = value else { throw bad("entry is \(value.kindName), expected an object") }
            var dtypeValue: JSONValue?, shapeValue: JSONValue?, offsetsValue: JSONValue?
            for (key, v) in fields {
                switch key {
                case "dtype": dtypeValue = v
                case "shape": shapeValue = v
                case "data_offsets": offsetsValue = v
                default: break  // unknown keys are tolerated, like the Rust reader
                }
            }
            guard case .string(let dtypeName)? = dtypeValue else {
                throw bad(dtypeValue == nil ? "missing 'dtype'" : "'dtype' is \(dtypeValue!.kindName), expected a string")
            }
            let dtype = DType(rawValue: dtypeName)
            guard let elementSize = dtype?.size ?? DTypeNames.unsupportedSizes[dtypeName] else {
                throw bad("unknown dtype '\(dtypeName)' (known: \(DTypeNames.supported))")
            }
            guard case .array(let dims)? = shapeValue else {
                throw bad(shapeValue == nil ? "missing 'shape'" : "'shape' is \(shapeValue!.kindName), expected an array")
            }
            var shape: [Int] = []
            shape.reserveCapacity(dims.count)
            var elements = 1
            var overflow = false
            for d in dims {
                guard case .integer(let n) = d, n >= 0 else {
                    throw bad("shape \(render(dims)) must hold non-negative integers")
                }
                shape.append(n)
                let (p, o) = elements.multipliedReportingOverflow(by: n)
                elements = p
                overflow = overflow || o
            }
            let (byteCount, o2) = elements.multipliedReportingOverflow(by: elementSize)
            if overflow || o2 { throw bad("shape \(shape) is too large (its byte size overflows)") }
            guard case .array(let offs)? = offsetsValue else {
                throw bad(offsetsValue == nil ? "missing 'data_offsets'"
                          : "'data_offsets' is \(offsetsValue!.kindName), expected [begin, end]")
            }
            guard offs.count == 2, case .integer(let begin) = offs[0], case .integer(let end) = offs[1],
                  begin >= 0, end >= 0 else {
                throw bad("data_offsets \(render(offs)) must be two non-negative integers [begin, end]")
            }
            guard begin <= end else { throw bad("data_offsets [\(begin), \(end)] has begin after end") }
            guard end - begin == byteCount else {
                throw bad("shape \(shape) of \(dtypeName) needs \(byteCount) bytes but data_offsets [\(begin), \(end)] "
                          + "span \(end - begin)")
            }
            guard end <= dataSize else {
                throw bad("data_offsets [\(begin), \(end)] run past the end of the data section (\(dataSize) bytes); "
                          + "the file is truncated")
            }
            if let dtype {
                tensors[name] = TensorInfo(name: name, dtype: dtype, shape: shape, dataOffsets: begin..<end)
            } else {
                unsupported[name] = dtypeName
            }
            if begin < end { spans.append((begin, end, name)) }
        }

        // No two tensors may share bytes: sort by start and compare each with the furthest end so far.
        spans.sort { ($0.0, $0.1, $0.2) < ($1.0, $1.1, $1.2) }
        var furthest = (end: 0, name: "")
        for (begin, end, name) in spans {
            if begin < furthest.end {
                throw .invalidTensor(path: path, tensor: name,
                                     reason: "data_offsets [\(begin), \(end)] overlap tensor '\(furthest.name)' "
                                     + "(which ends at \(furthest.end))")
            }
            if end > furthest.end { furthest = (end, name) }
        }
        return SafetensorsHeader(tensors: tensors, unsupported: unsupported, metadata: metadata, dataStart: dataStart)
    }

    private static func parseMetadata(path: String, _ value: JSONValue) throws(SafetensorsError) -> [String: String] {
        guard case .object(let entries) = value else {
            throw .invalidHeader(path: path, reason: "'__metadata__' is \(value.kindName), expected an object of strings")
        }
        var out: [String: String] = [:]
        for (k, v) in entries {
            guard case .string(let s) = v else {
                throw .invalidHeader(path: path, reason: "'__metadata__' key '\(k)' is \(v.kindName), expected a string")
            }
            out[k] = s
        }
        return out
    }

    /// A compact rendering of JSON array items for messages.
    private static func render(_ items: [JSONValue]) -> String {
        let parts = items.prefix(8).map { v -> String in
            switch v {
            case .integer(let n): return String(n)
            case .number(let d): return String(d)
            case .string(let s): return "\"\(s.prefix(20))\""
            case .bool(let b): return String(b)
            case .null: return "null"
            case .array: return "[…]"
            case .object: return "{…}"
            }
        }
        return "[" + parts.joined(separator: ", ") + (items.count > 8 ? ", …" : "") + "]"
    }
}
