#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Tensors

/// A model checkpoint made of one or more safetensors files, opened from any of:
/// - a single `.safetensors` file;
/// - a `*.safetensors.index.json` (`{"metadata": {...}, "weight_map": {tensor: shard file}}`), whose shards sit
///   beside it; every shard must exist and hold every tensor mapped to it;
/// - a directory (a diffusers component folder or a transformers model folder), resolved by
///   `SafetensorsCheckpoint.resolve(directory:variant:)`.
///
/// All files are memory-mapped and their headers validated at open; tensor data is read only when asked.
public final class SafetensorsCheckpoint: @unchecked Sendable {
    /// The path as given.
    public let path: String
    /// The index file when the checkpoint is sharded.
    public let indexPath: String?
    /// The files, in shard order (sorted by file name).
    public let files: [SafetensorsFile]
    /// The index's `metadata` (values rendered as strings), or the single file's `__metadata__`.
    public let metadata: [String: String]
    /// Tensor name → index into `files`.
    private let location: [String: Int]

    /// Opens a file, an index or a directory. `variant` (e.g. "fp16") selects diffusers variant files in a directory.
    public init(path: String, variant: String? = nil) throws(SafetensorsError) {
        self.path = path
        var st = stat()
        guard stat(path, &st) == 0 else { throw .unreadable(path: path, reason: SafetensorsFile.errnoText(errno)) }
        var target = path
        if (st.st_mode & S_IFMT) == S_IFDIR {
            target = try Self.resolve(directory: path, variant: variant)
        }
        if target.hasSuffix(".json") {
            let (files, location, metadata) = try Self.openIndex(target)
            indexPath = target
            self.files = files
            self.location = location
            self.metadata = metadata
        } else {
            let file = try SafetensorsFile(path: target)
            indexPath = nil
            files = [file]
            var loc: [String: Int] = [:]
            for name in file.tensors.keys { loc[name] = 0 }
            for name in file.unsupportedTensors.keys { loc[name] = 0 }
            location = loc
            metadata = file.metadata
        }
    }

    /// Tensor names (supported dtypes), sorted.
    public var names: [String] { location.keys.filter { files[location[$0]!].tensors[$0] != nil }.sorted() }

    /// Whether the checkpoint holds `name`.
    public func contains(_ name: String) -> Bool { location[name] != nil }

    /// The file holding `name`.
    public func file(containing name: String) throws(SafetensorsError) -> SafetensorsFile {
        guard let i = location[name] else {
            throw .tensorNotFound(path: indexPath ?? files.first?.path ?? path, tensor: name, available: names)
        }
        return files[i]
    }

    /// Where `name` lives (dtype, shape, byte range within its file).
    public func info(_ name: String) throws(SafetensorsError) -> TensorInfo { try file(containing: name).info(name) }

    /// Reads `name` converted to fp32.
    public func tensor(_ name: String) throws(SafetensorsError) -> Tensor { try file(containing: name).tensor(name) }

    /// Reads tensor `name` as fp32 and, with `releasingSource`, drops the process's mapped source pages after the
    /// conversion (see `SafetensorsFile.tensor(_:releasingSource:)`): what loaders converting a whole model use.
    public func tensor(_ name: String, releasingSource: Bool) throws(SafetensorsError) -> Tensor {
        try file(containing: name).tensor(name, releasingSource: releasingSource)
    }

    /// The stored bytes and dtype of `name`, without conversion or copy (keeps its file mapped); `readAhead` as
    /// in `SafetensorsFile.rawBytes(_:readAhead:)`.
    public func rawBytes(_ name: String, readAhead: Bool = true) throws(SafetensorsError) -> RawTensorBytes {
        try file(containing: name).rawBytes(name, readAhead: readAhead)
    }

    /// Total bytes of tensor data.
    public var dataBytes: Int {
        location.keys.reduce(0) { acc, name in acc + (files[location[name]!].tensors[name]?.byteCount ?? 0) }
    }

    /// `FileFingerprint.fast` of the index (if any) and every file, one per line: changes whenever any file does.
    public func fingerprint() throws(SafetensorsError) -> String {
        var parts: [String] = []
        if let indexPath { parts.append(try FileFingerprint.fast(indexPath)) }
        for f in files { parts.append(try FileFingerprint.fast(f.path)) }
        return parts.joined(separator: "\n")
    }

    // MARK: Resolution

    /// The file to open for a model directory, in this order:
    /// 1. `diffusion_pytorch_model[.variant].safetensors.index.json` (diffusers also writes
    ///    `diffusion_pytorch_model.safetensors.index.<variant>.json`), then `diffusion_pytorch_model[.variant].safetensors`;
    /// 2. the same for `model` (transformers);
    /// 3. without a variant: the only `*.safetensors.index.json`, else the only `*.safetensors` file.
    /// Throws `invalidIndex` naming the directory when nothing fits or the choice is ambiguous.
    public static func resolve(directory: String, variant: String? = nil) throws(SafetensorsError) -> String {
        let dir = directory.hasSuffix("/") && directory.count > 1 ? String(directory.dropLast()) : directory
        var candidates: [String] = []
        for stem in ["diffusion_pytorch_model", "model"] {
            if let v = variant {
                candidates += ["\(stem).\(v).safetensors.index.json", "\(stem).safetensors.index.\(v).json",
                               "\(stem).\(v).safetensors"]
            } else {
                candidates += ["\(stem).safetensors.index.json", "\(stem).safetensors"]
            }
        }
        for c in candidates where isRegularFile(dir + "/" + c) { return dir + "/" + c }
        let entries = try listDirectory(dir).filter { isRegularFile(dir + "/" + $0) }.sorted()
        if let v = variant {
            throw .invalidIndex(path: dir, reason: "no '\(v)' variant found (looked for \(candidates.joined(separator: ", ")))")
        }
        let indexes = entries.filter { $0.hasSuffix(".safetensors.index.json") }
        if indexes.count == 1 { return dir + "/" + indexes[0] }
        if indexes.count > 1 {
            throw .invalidIndex(path: dir, reason: "several indexes (\(indexes.joined(separator: ", "))); give the path of one")
        }
        let singles = entries.filter { $0.hasSuffix(".safetensors") }
        if singles.count == 1 { return dir + "/" + singles[0] }
        if singles.isEmpty {
            throw .invalidIndex(path: dir, reason: "the directory holds no .safetensors file or *.safetensors.index.json")
        }
        throw .invalidIndex(path: dir, reason: "several .safetensors files and no index "
                            + "(\(singles.prefix(6).joined(separator: ", "))\(singles.count > 6 ? ", …" : "")); "
                            + "give the path of one file")
    }

    private static func isRegularFile(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }

    private static func listDirectory(_ dir: String) throws(SafetensorsError) -> [String] {
        guard let d = opendir(dir) else { throw .unreadable(path: dir, reason: SafetensorsFile.errnoText(errno)) }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    // MARK: Index

    private static func openIndex(_ index: String) throws(SafetensorsError)
        -> ([SafetensorsFile], [String: Int], [String: String]) {
        let bytes = try readSmallFile(index)
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw .invalidIndex(path: index, reason: "not valid UTF-8")
        }
        let json: JSONValue
        do { json = try JSONParser.parse(bytes) } catch {
            throw .invalidIndex(path: index, reason: "not valid JSON: \(error)")
        }
        guard case .object(let top) = json else {
            throw .invalidIndex(path: index, reason: "the index is \(json.kindName), expected a JSON object")
        }
        var metadata: [String: String] = [:]
        var weightMap: [(key: String, value: JSONValue)]?
        for (key, value) in top {
            if key == "weight_map" {
                guard case .object(let m) = value else {
                    throw .invalidIndex(path: index, reason: "'weight_map' is \(value.kindName), expected an object")
                }
                weightMap = m
            } else if key == "metadata", case .object(let m) = value {
                for (k, v) in m {
                    switch v {
                    case .string(let s): metadata[k] = s
                    case .integer(let n): metadata[k] = String(n)
                    case .number(let d): metadata[k] = String(d)
                    case .bool(let b): metadata[k] = String(b)
                    default: break
                    }
                }
            }
        }
        guard let weightMap else { throw .invalidIndex(path: index, reason: "missing 'weight_map'") }
        let (dir, _) = AtomicFile.split(index)

        var shardOf: [String: String] = [:]
        for (tensor, value) in weightMap {
            guard case .string(let shard) = value else {
                throw .invalidIndex(path: index, reason: "weight_map['\(tensor)'] is \(value.kindName), expected a file name")
            }
            guard !shard.isEmpty, !shard.hasPrefix("/"), !shard.split(separator: "/").contains("..") else {
                throw .invalidIndex(path: index, reason: "weight_map['\(tensor)'] = '\(shard)' must be a file beside the index")
            }
            if shardOf[tensor] != nil {
                throw .invalidIndex(path: index, reason: "tensor '\(tensor)' is listed twice in weight_map")
            }
            shardOf[tensor] = shard
        }
        let shardNames = Set(shardOf.values).sorted()
        var files: [SafetensorsFile] = []
        var fileIndex: [String: Int] = [:]
        for shard in shardNames {
            let shardPath = dir + "/" + shard
            var st = stat()
            if stat(shardPath, &st) != 0 && errno == ENOENT {
                let first = shardOf.filter { $0.value == shard }.keys.sorted().first ?? ""
                throw .missingShard(index: index, shard: shard, tensor: first)
            }
            fileIndex[shard] = files.count
            files.append(try SafetensorsFile(path: shardPath))
        }
        var location: [String: Int] = [:]
        for (tensor, shard) in shardOf.sorted(by: { $0.key < $1.key }) {
            guard let i = fileIndex[shard] else { continue }
            guard files[i].contains(tensor) else {
                throw .tensorMissingFromShard(index: index, shard: shard, tensor: tensor)
            }
            location[tensor] = i
        }
        return (files, location, metadata)
    }

    /// Reads a whole small file (an index is a few hundred kilobytes at most).
    private static func readSmallFile(_ path: String) throws(SafetensorsError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw .unreadable(path: path, reason: SafetensorsFile.errnoText(errno)) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .unreadable(path: path, reason: SafetensorsFile.errnoText(errno)) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw .unreadable(path: path, reason: "not a regular file") }
        let size = Int(st.st_size)
        guard size <= 64 << 20 else { throw .invalidIndex(path: path, reason: "index file is \(size) bytes, over 64 MiB") }
        var out = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let n = out.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, size - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .unreadable(path: path, reason: SafetensorsFile.errnoText(errno))
            }
            if n == 0 { break }
            done += n
        }
        return Array(out.prefix(done))
    }
}
