import Foundation
import Safetensors
import Tensors

/// Where a model's tensors come from, by the keys the model asks for: a safetensors checkpoint (one file or
/// shards), the raw stored bytes of another reader (e.g. a PyTorch `.pth`), or fp32 tensors in memory; optionally
/// under other stored names (`renamed`). Nothing is read until a `WeightStore` asks for a tensor.
public struct WeightSource: @unchecked Sendable {
    /// `@usableFromInline`: clients of the shared SDK library copy `WeightSource` values, so they need this type's
    /// metadata (a plain internal type is not exported from a non-testable build: "undefined symbol …StorageON").
    @usableFromInline
    enum Storage {
        case checkpoint(SafetensorsCheckpoint)
        case raw([String: RawTensorBytes])
        case tensors([String: Tensor])
    }

    let storage: Storage
    /// Model key → stored name.
    let names: [String: String]
    /// Stored names no model key reaches (reported as unexpected).
    let unreached: [String]
    /// Model key → (stored name, dtype) of tensors stored in a dtype the reader does not convert (F64, I8 …).
    let unsupported: [String: (stored: String, dtype: String)]

    init(_ storage: Storage, names: [String], unsupported: [String: String] = [:]) {
        self.storage = storage
        self.names = Dictionary(names.map { ($0, $0) }, uniquingKeysWith: { a, _ in a })
        unreached = []
        var u: [String: (stored: String, dtype: String)] = [:]
        for (name, dtype) in unsupported { u[name] = (name, dtype) }
        self.unsupported = u
    }

    private init(storage: Storage, names: [String: String], unreached: [String],
                 unsupported: [String: (stored: String, dtype: String)]) {
        self.storage = storage
        self.names = names
        self.unreached = unreached
        self.unsupported = unsupported
    }

    /// The tensors of a safetensors checkpoint (F32/F16/BF16; others are reported as wrongly typed).
    public static func checkpoint(_ checkpoint: SafetensorsCheckpoint) -> WeightSource {
        var unsupported: [String: String] = [:]
        for file in checkpoint.files { unsupported.merge(file.unsupportedTensors) { a, _ in a } }
        return WeightSource(.checkpoint(checkpoint), names: checkpoint.names, unsupported: unsupported)
    }

    /// The tensors of one safetensors file.
    public static func file(_ file: SafetensorsFile) throws(SafetensorsError) -> WeightSource {
        var raw: [String: RawTensorBytes] = [:]
        for name in file.names { raw[name] = try file.rawBytes(name) }
        return WeightSource(.raw(raw), names: file.names, unsupported: file.unsupportedTensors)
    }

    /// Stored bytes from any reader (each keeps its mapping alive).
    public static func raw(_ tensors: [String: RawTensorBytes]) -> WeightSource {
        WeightSource(.raw(tensors), names: Array(tensors.keys))
    }

    /// fp32 tensors in memory.
    public static func tensors(_ tensors: [String: Tensor]) -> WeightSource {
        WeightSource(.tensors(tensors), names: Array(tensors.keys))
    }

    /// The same tensors under the keys `key(storedName)` gives; nil drops a tensor the model never uses (e.g. a
    /// tied `lm_head.weight`). When two stored names give one key, the later one (in name order) is unexpected.
    public func renamed(_ key: (String) -> String?) -> WeightSource {
        var mapped: [String: String] = [:], unreached = unreached
        for (oldKey, stored) in names.sorted(by: { $0.value < $1.value }) {
            guard let newKey = key(oldKey) else { continue }
            if mapped[newKey] == nil { mapped[newKey] = stored } else { unreached.append(stored) }
        }
        var unsupported: [String: (stored: String, dtype: String)] = [:]
        for (oldKey, entry) in self.unsupported { if let newKey = key(oldKey) { unsupported[newKey] = entry } }
        return WeightSource(storage: storage, names: mapped, unreached: unreached, unsupported: unsupported)
    }

    /// The same tensors under explicit keys: `keys` maps model key → current key; current keys it does not reach
    /// are unexpected.
    public func renamed(keys: [String: String]) -> WeightSource {
        var mapped: [String: String] = [:], unsupported: [String: (stored: String, dtype: String)] = [:]
        for (newKey, oldKey) in keys {
            if let stored = names[oldKey] { mapped[newKey] = stored }
            if let entry = self.unsupported[oldKey] { unsupported[newKey] = entry }
        }
        let reached = Set(mapped.values)
        let unreached = self.unreached + names.values.filter { !reached.contains($0) }
        return WeightSource(storage: storage, names: mapped, unreached: unreached, unsupported: unsupported)
    }

    /// The model keys this source holds.
    public var keys: [String] { names.keys.sorted() }

    /// The stored shape of model key `key`, nil when absent (or unreadable).
    public func shape(_ key: String) -> [Int]? {
        guard let stored = names[key] else { return nil }
        switch storage {
        case .checkpoint(let c): return try? c.info(stored).shape
        case .raw(let r): return r[stored]?.shape
        case .tensors(let t): return t[stored]?.shape
        }
    }

    /// The stored name of model key `key` (for messages).
    func storedName(_ key: String) -> String { names[key] ?? key }

    /// The stored bytes of `key` (nil for in-memory tensors and absent keys).
    func raw(_ key: String, readAhead: Bool = true) throws(SafetensorsError) -> RawTensorBytes? {
        guard let stored = names[key] else { return nil }
        switch storage {
        case .checkpoint(let c): return try c.rawBytes(stored, readAhead: readAhead)
        case .raw(let r): return r[stored]
        case .tensors: return nil
        }
    }

    /// The in-memory tensor of `key` (nil for the other sources).
    func memoryTensor(_ key: String) -> Tensor? {
        guard case .tensors(let t) = storage, let stored = names[key] else { return nil }
        return t[stored]
    }
}

/// How many GEMMs a model's linear layers run per load, which decides whether preparing them for the CPU's kernels
/// pays (`WeightStore.linear`).
public enum WeightReuse: Sendable {
    /// Every layer runs many times per load (a denoiser: every step): pack the weights for the fastest kernel.
    case many
    /// A few times per load (a text encoder: once per prompt): fp32 layers of a bf16 checkpoint that oneDNN cannot
    /// pack straight from bf16 (no AVX-512) keep the stored bf16 weights and decode them panel by panel inside each
    /// GEMM (`WeightKernel.storedBF16`) instead of decoding an fp32 copy: for Gemma-2-2B that copy is 8 GB of fresh
    /// memory the kernel must zero, 6–8 s of a load on a 2-core Zen 3 VM, for an encode no faster than on the
    /// stored weights. (Where oneDNN packs from bf16 with JIT code the pack stays: 2.4–3.5 s on an Emerald Rapids
    /// host, for an encode a third faster than on decoded panels.)
    case few
}

/// Hands a model its weights by checkpoint key, while the code that builds the model declares each key and shape.
///
/// A loader runs its model's building code twice (`WeightStore.load`): first on a collecting store (tensors are
/// empty placeholders, `isCollecting` is true, layers skip their preparation), which yields the expected key set;
/// that set is checked against the source at once — every missing, unexpected and wrongly shaped key in one
/// `ModelFolderError.keyMismatch` — and only then the model is built from the real tensors. Reading is lazy and
/// keeps the peak low:
/// - fp32 tensors are used in place from the read-only file mapping (no copy); F16/BF16 are converted once and
///   their mapped source pages released;
/// - `linear` prepares a layer for this CPU's kernels at `precision` right away and releases the source pages
///   when the prepared weight is a copy (packed or rounded), so the load never holds a second copy of the model.
public final class WeightStore: @unchecked Sendable {
    /// Key → shape the building code declared (on a loading store: the checked set it was given).
    public private(set) var expected: [String: [Int]]
    /// Keys accepted when present but not required (BatchNorm's `num_batches_tracked`).
    public private(set) var tolerated: Set<String> = []
    /// The tensors, or nil while only collecting the key set.
    public let source: WeightSource?
    /// The weights' path, for messages.
    public let path: String
    /// The arithmetic of the layers prepared from these weights (`linear`, and what a model prepares itself).
    public let precision: Precision
    /// Whether a tensor holding NaN or ±inf is a corrupt file (checked as each tensor is read).
    public let rejectsNonFinite: Bool
    /// How often the model runs its linear layers per load.
    public let reuse: WeightReuse
    /// The first read failure; the model is built to the end, then `finish()` throws it.
    public private(set) var failure: ModelFolderError?
    private let declaring: Bool

    /// True on the collecting pass: accessors return empty placeholders and layers should not prepare anything.
    public var isCollecting: Bool { source == nil }

    /// A collecting store: records the keys and shapes the building code asks for.
    public init(collecting precision: Precision = .fp32) {
        source = nil
        path = ""
        self.precision = precision
        rejectsNonFinite = false
        reuse = .many
        expected = [:]
        declaring = true
    }

    /// A loading store over `source`. `expected`: the checked key set (from a collecting pass), which lets a
    /// second builder of the same model (e.g. a GPU port) read keys by name (`callAsFunction(_:)`, `optional`).
    public init(_ source: WeightSource, path: String, precision: Precision = .fp32, expected: [String: [Int]] = [:],
                rejectsNonFinite: Bool = false, reuse: WeightReuse = .many) {
        self.source = source
        self.path = path
        self.precision = precision
        self.rejectsNonFinite = rejectsNonFinite
        self.reuse = reuse
        self.expected = expected
        declaring = expected.isEmpty
    }

    private static let placeholder = Tensor(zeros: [0])

    // MARK: declaring accessors (the model's building code)

    /// The fp32 tensor `key`, which must have `shape`.
    public func callAsFunction(_ key: String, _ shape: [Int]) -> Tensor {
        declare(key, shape)
        return isCollecting ? Self.placeholder : read(key) ?? Self.placeholder
    }

    /// The `[out, in]` (or `[out, in, 1, 1]`) weight `key` of `shape` as a linear layer prepared at `precision`.
    public func linear(_ key: String, _ shape: [Int]) -> LinearWeight {
        declare(key, shape)
        if isCollecting { return LinearWeight(Tensor(zeros: [0, 0]), precision: .fp32, mode: .plain) }
        func prepared(_ t: Tensor) -> LinearWeight {
            LinearWeight(t.reshaped([t.shape[0], t.count / Swift.max(1, t.shape[0])]), precision: precision)
        }
        if let t = source?.memoryTensor(key) { return prepared(t) }
        guard let raw = rawBytes(key) else { return LinearWeight(Tensor(zeros: [0, 0]), precision: .fp32, mode: .plain) }
        // A bf16 checkpoint packs straight into oneDNN's or the AMX kernel's layout where they can; else fp32 layers
        // a model runs a few times per load use the stored weights. No fp32 copy either way (the non-finite scan
        // needs one).
        if raw.dtype == .bf16, !rejectsNonFinite, let bits = raw.bytes.baseAddress, let rows = raw.shape.first, rows > 0 {
            let columns = raw.shape.reduce(1, *) / rows
            if let weight = LinearWeight(bf16Weights: bits, outFeatures: rows, inFeatures: columns, precision: precision) {
                raw.releaseSourcePages()
                return weight
            }
            if reuse == .few, Kernels.selection.storedWeights, Kernels.effectivePrecision(precision).0 == .fp32,
               let weight = LinearWeight(storedBF16: bits, outFeatures: rows, inFeatures: columns, owner: raw.owner) {
                return weight
            }
        }
        guard let t = checked(key, Self.fp32(raw)) else {
            return LinearWeight(Tensor(zeros: [0, 0]), precision: .fp32, mode: .plain)
        }
        let weight = prepared(t)
        // Packed or rounded (a copy): the mapped source pages are no longer needed in this process.
        if weight.mode != .plain { raw.releaseSourcePages() }
        return weight
    }

    /// The filter `key` of `shape` `[out, in/groups, kh, kw]` as a convolution prepared at `precision` (dense
    /// ones; depthwise and grouped stay fp32), with `bias`; nil while collecting. Releases the source pages when
    /// the prepared filter is a copy.
    public func conv(_ key: String, _ shape: [Int], bias: Tensor?, stride: Int = 1, padding: Int = 0,
                     groups: Int = 1) -> ConvWeight? {
        declare(key, shape)
        if isCollecting { return nil }
        let raw = source?.memoryTensor(key) == nil ? rawBytes(key) : nil
        let weight = read(key) ?? Tensor(zeros: shape)
        let conv = ConvWeight(weight, bias: bias, stride: stride, padding: padding, groups: groups, precision: precision)
        if conv.mode != .plain { raw?.releaseSourcePages() }
        return conv
    }

    /// The stored bytes of `key` (of `shape`) unconverted, e.g. an embedding table kept in its file's dtype and
    /// gathered row by row (`readAhead: false`: only the rows used are read from disk). A placeholder of no bytes
    /// while collecting.
    public func raw(_ key: String, _ shape: [Int], readAhead: Bool = true) -> RawTensorBytes {
        declare(key, shape)
        let empty = RawTensorBytes(info: TensorInfo(name: key, dtype: .f32, shape: [0], dataOffsets: 0..<0),
                                   bytes: UnsafeRawBufferPointer(start: nil, count: 0), owner: NSNull())
        if isCollecting { return empty }
        if let t = source?.memoryTensor(key) {
            let bytes = UnsafeRawBufferPointer(start: t.storage.pointer + t.offset, count: t.byteCount)
            return RawTensorBytes(info: TensorInfo(name: key, dtype: .f32, shape: t.shape,
                                                   dataOffsets: 0..<(t.count * 4)), bytes: bytes, owner: t.storage)
        }
        return rawBytes(key, readAhead: readAhead) ?? empty
    }

    /// Accepts `key` when present without requiring it.
    public func tolerate(_ key: String) { tolerated.insert(key) }

    // MARK: by-name accessors (a second builder of a checked model)

    /// The fp32 tensor `key` of the checked key set.
    public func callAsFunction(_ key: String) -> Tensor { optional(key) ?? Self.placeholder }

    /// The fp32 tensor `key` when the checked key set holds it, else nil.
    public func optional(_ key: String) -> Tensor? {
        guard let shape = expected[key] else { return nil }
        return self(key, shape)
    }

    // MARK: checking

    /// Every missing, unexpected and wrongly shaped (or typed) key of `source` against the declared set.
    public func mismatches(in source: WeightSource) -> (missing: [String], unexpected: [String], wrongShape: [String]) {
        var missing: [String] = [], wrong: [String] = []
        for (key, shape) in expected.sorted(by: { $0.key < $1.key }) {
            if let (stored, dtype) = source.unsupported[key] {
                wrong.append("\(stored) (dtype \(dtype); F32, F16 or BF16 expected)")
                continue
            }
            guard let stored = source.shape(key) else { missing.append(key); continue }
            if stored != shape { wrong.append("\(source.storedName(key)) \(stored) (expected \(shape))") }
        }
        var unexpected = source.unreached
        for key in source.names.keys where expected[key] == nil && !tolerated.contains(key) {
            unexpected.append(source.storedName(key))
        }
        return (missing, unexpected.sorted(), wrong)
    }

    /// Throws `ModelFolderError.keyMismatch` listing every bad key when `source` does not hold exactly the declared
    /// keys and shapes. `folder` says what the weights should be (e.g. "an AutoencoderDC vae/ folder").
    public func check(_ source: WeightSource, path: String, folder: String) throws(ModelFolderError) {
        let (missing, unexpected, wrong) = mismatches(in: source)
        if !missing.isEmpty || !unexpected.isEmpty || !wrong.isEmpty {
            throw .keyMismatch(path: path, folder: folder, missing: missing, unexpected: unexpected, wrongShape: wrong)
        }
    }

    /// Throws the first read failure of this store's tensors.
    public func finish() throws(ModelFolderError) {
        if let failure { throw failure }
    }

    /// The key set `build` declares (a collecting pass).
    public static func expectedShapes(precision: Precision = .fp32, _ build: (WeightStore) throws -> Void) rethrows
        -> [String: [Int]] {
        let spec = WeightStore(collecting: precision)
        try build(spec)
        return spec.expected
    }

    /// The whole pattern: collects the key set `build` declares, checks `source` against it (every bad key at
    /// once), then builds the model from the tensors and throws the first read failure.
    public static func load<Model>(_ source: WeightSource, path: String, folder: String, precision: Precision = .fp32,
                                   rejectsNonFinite: Bool = false, reuse: WeightReuse = .many,
                                   _ build: (WeightStore) throws -> Model) throws -> Model {
        let spec = WeightStore(collecting: precision)
        _ = try build(spec)
        try spec.check(source, path: path, folder: folder)
        let store = WeightStore(source, path: path, precision: precision, rejectsNonFinite: rejectsNonFinite, reuse: reuse)
        store.tolerated = spec.tolerated
        let model = try build(store)
        try store.finish()
        return model
    }

    // MARK: reading

    private func declare(_ key: String, _ shape: [Int]) {
        if declaring {
            expected[key] = shape
        } else if !isCollecting, expected[key] != shape {
            fail("the model asked for \(key) \(shape), which the checked key set does not hold")
        }
    }

    private func fail(_ message: String) {
        if failure == nil { failure = .weights(path: path, message: message) }
    }

    private func rawBytes(_ key: String, readAhead: Bool = true) -> RawTensorBytes? {
        do {
            guard let raw = try source?.raw(key, readAhead: readAhead) else { fail("no tensor \(key)"); return nil }
            return raw
        } catch {
            fail(error.description)
            return nil
        }
    }

    private func read(_ key: String) -> Tensor? {
        if let t = source?.memoryTensor(key) { return t }
        return rawBytes(key).flatMap { checked(key, Self.fp32($0)) }
    }

    private func checked(_ key: String, _ t: Tensor) -> Tensor? {
        // A NaN/inf weight would silently turn every output black; report the file instead.
        if rejectsNonFinite, t.withUnsafeBufferPointer({ $0.contains { !$0.isFinite } }) {
            fail("tensor \(key) holds non-finite values; the file is corrupt")
            return nil
        }
        return t
    }

    /// fp32 weights are used in place from the read-only file mapping (no copy, no page faults on fresh memory:
    /// pages come in from the page cache as the first forward reads them); F16/BF16 are converted once into fresh
    /// buffers and the source pages dropped from this process (the page cache keeps them), or the mapped file
    /// would count in RSS on top of the fp32 weights until the end of the load. Models never write to weights.
    static func fp32(_ raw: RawTensorBytes) -> Tensor {
        let count = raw.shape.reduce(1, *)
        if raw.dtype == .f32, count > 0, let base = raw.bytes.baseAddress,
           Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0 {
            let pointer = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: Float.self))
            return Tensor(storage: TensorStorage(borrowing: pointer, count: count, owner: raw.owner), shape: raw.shape)
        }
        let decoded = raw.decoded()
        raw.releaseSourcePages()
        return decoded
    }
}
