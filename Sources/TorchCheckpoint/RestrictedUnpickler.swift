import Foundation
import Tensors

/// A storage a tensor record points at: `data/<key>` in the archive, of `count` elements of `dtype`.
struct StorageRef: Equatable {
    let key: String
    let dtype: DType
    let count: Int
}

/// One `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, …)` call, not executed: its arguments.
struct TensorRecord: Equatable {
    let storage: StorageRef
    /// In elements.
    let offset: Int
    let shape: [Int]
    /// In elements.
    let strides: [Int]
}

/// A value on the unpickler's stack. Lists and dicts are references, as in Python (the memo may share them).
indirect enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case bytes(Int)
    case tuple([PickleValue])
    case list(ListBox)
    case dict(DictBox)
    /// A whitelisted global (`module.name`), only ever called by REDUCE if it is a tensor-record function.
    case global(String)
    case storage(StorageRef)
    case tensor(TensorRecord)
}

final class ListBox { var items: [PickleValue] = [] }
final class DictBox { var items: [(key: PickleValue, value: PickleValue)] = [] }

/// A pickle reader that builds data and never runs code: the only globals it accepts are the ones a PyTorch
/// state dict is made of (`collections.OrderedDict`, `torch._utils._rebuild_tensor_v2` and
/// `_rebuild_parameter`, the `torch.*Storage` types named by persistent ids), and REDUCE of those is interpreted
/// (a tensor record, an empty dict), not called. Any other global, REDUCE, object-building opcode or persistent id
/// is refused with the opcode's byte offset. Bounded: stack, memo and container sizes are limited by the input.
struct RestrictedUnpickler {
    /// Torch storage classes → element dtype.
    static let storageTypes: [String: DType] = [
        "torch.FloatStorage": .f32, "torch.HalfStorage": .f16, "torch.BFloat16Storage": .bf16,
        "torch.LongStorage": .i64, "torch.IntStorage": .i32, "torch.ByteStorage": .u8, "torch.BoolStorage": .bool,
    ]
    /// Globals accepted at all (their use is checked again where they are used).
    static let allowedGlobals: Set<String> = Set(storageTypes.keys).union([
        "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
    ])

    let data: UnsafeRawBufferPointer
    let path: String
    /// Storage key → byte size of `data/<key>` in the archive.
    let storageSizes: [String: Int]

    private var position = 0
    private var stack: [PickleValue] = []
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]

    init(data: UnsafeRawBufferPointer, path: String, storageSizes: [String: Int]) {
        self.data = data
        self.path = path
        self.storageSizes = storageSizes
    }

    private func refuse(_ what: String, at offset: Int) -> TorchCheckpointError {
        .refused(path: path, reason: "\(what) at byte \(offset) of data.pkl; only tensor data is loaded from "
                 + "checkpoints and nothing in them is executed (convert it with a trusted tool if it is yours)")
    }

    private func bad(_ what: String, at offset: Int) -> TorchCheckpointError {
        .malformed(path: path, reason: "data.pkl: \(what) at byte \(offset)")
    }

    private mutating func take(_ n: Int, _ at: Int) throws(TorchCheckpointError) -> UnsafeRawBufferPointer {
        guard n >= 0, n <= data.count - position else { throw bad("truncated pickle", at: at) }
        defer { position += n }
        return UnsafeRawBufferPointer(rebasing: data[position..<(position + n)])
    }

    private mutating func uint(_ n: Int, _ at: Int) throws(TorchCheckpointError) -> UInt64 {
        let b = try take(n, at)
        var v: UInt64 = 0
        for i in (0..<n).reversed() { v = v << 8 | UInt64(b[i]) }
        return v
    }

    private mutating func length(_ n: Int, _ at: Int) throws(TorchCheckpointError) -> Int {
        let v = try uint(n, at)
        guard v <= UInt64(data.count) else { throw bad("length \(v) beyond the pickle", at: at) }
        return Int(v)
    }

    private mutating func pop(_ at: Int) throws(TorchCheckpointError) -> PickleValue {
        guard let v = stack.popLast(), stack.count >= (marks.last ?? 0) else { throw bad("stack underflow", at: at) }
        return v
    }

    private mutating func popMark(_ at: Int) throws(TorchCheckpointError) -> [PickleValue] {
        guard let m = marks.popLast(), m <= stack.count else { throw bad("no MARK", at: at) }
        defer { stack.removeSubrange(m...) }
        return Array(stack[m...])
    }

    private func text(_ b: UnsafeRawBufferPointer) -> String { String(decoding: b, as: UTF8.self) }

    /// Runs the pickle to STOP and returns the root value.
    mutating func load() throws(TorchCheckpointError) -> PickleValue {
        while true {
            let at = position
            let op = try take(1, at)[0]
            switch op {
            case 0x80: _ = try take(1, at)  // PROTO
            case 0x95: _ = try take(8, at)  // FRAME (protocol 4 framing hint)
            case 0x2e:  // STOP
                guard stack.count == 1, marks.isEmpty else { throw bad("STOP with \(stack.count) values", at: at) }
                return stack[0]
            case 0x28: marks.append(stack.count)  // MARK
            case 0x7d: stack.append(.dict(DictBox()))  // EMPTY_DICT
            case 0x5d: stack.append(.list(ListBox()))  // EMPTY_LIST
            case 0x29: stack.append(.tuple([]))  // EMPTY_TUPLE
            case 0x4e: stack.append(.none)
            case 0x88: stack.append(.bool(true))
            case 0x89: stack.append(.bool(false))
            case 0x4a: stack.append(.int(Int(Int32(bitPattern: UInt32(try uint(4, at))))))  // BININT
            case 0x4b: stack.append(.int(Int(try uint(1, at))))  // BININT1
            case 0x4d: stack.append(.int(Int(try uint(2, at))))  // BININT2
            case 0x8a:  // LONG1: little-endian two's complement
                let n = try length(1, at)
                guard n <= 8 else { throw bad("integer of \(n) bytes", at: at) }
                var v = n == 0 ? 0 : Int(try uint(n, at))
                if n > 0 && n < 8 && v & (1 << (8 * n - 1)) != 0 { v -= 1 << (8 * n) }
                stack.append(.int(v))
            case 0x47: stack.append(.float(Double(bitPattern: (try uint(8, at)).byteSwapped)))  // BINFLOAT (big-endian)
            case 0x58: stack.append(.string(text(try take(try length(4, at), at))))  // BINUNICODE
            case 0x8c: stack.append(.string(text(try take(try length(1, at), at))))  // SHORT_BINUNICODE
            case 0x8d: stack.append(.string(text(try take(try length(8, at), at))))  // BINUNICODE8
            case 0x55: stack.append(.string(text(try take(try length(1, at), at))))  // SHORT_BINSTRING
            case 0x54: stack.append(.string(text(try take(try length(4, at), at))))  // BINSTRING
            case 0x43: stack.append(.bytes(try take(try length(1, at), at).count))  // SHORT_BINBYTES
            case 0x42: stack.append(.bytes(try take(try length(4, at), at).count))  // BINBYTES
            case 0x71: memo[Int(try uint(1, at))] = try top(at)  // BINPUT
            case 0x72: memo[Int(try uint(4, at))] = try top(at)  // LONG_BINPUT
            case 0x94: memo[memo.count] = try top(at)  // MEMOIZE
            case 0x68, 0x6a:  // BINGET, LONG_BINGET
                let key = Int(try uint(op == 0x68 ? 1 : 4, at))
                guard let v = memo[key] else { throw bad("memo \(key) is empty", at: at) }
                stack.append(v)
            case 0x74: stack.append(.tuple(try popMark(at)))  // TUPLE
            case 0x85, 0x86, 0x87:  // TUPLE1/2/3
                let n = Int(op - 0x84)
                guard stack.count - n >= (marks.last ?? 0) else { throw bad("stack underflow", at: at) }
                let items = Array(stack.suffix(n))
                stack.removeLast(n)
                stack.append(.tuple(items))
            case 0x61:  // APPEND
                let v = try pop(at)
                guard case .list(let l) = try top(at) else { throw bad("APPEND to a non-list", at: at) }
                l.items.append(v)
            case 0x65:  // APPENDS
                let items = try popMark(at)
                guard case .list(let l) = try top(at) else { throw bad("APPENDS to a non-list", at: at) }
                l.items += items
            case 0x73:  // SETITEM
                let v = try pop(at), k = try pop(at)
                guard case .dict(let d) = try top(at) else { throw bad("SETITEM on a non-dict", at: at) }
                d.items.append((k, v))
            case 0x75:  // SETITEMS
                let items = try popMark(at)
                guard items.count % 2 == 0, case .dict(let d) = try top(at) else { throw bad("bad SETITEMS", at: at) }
                for i in stride(from: 0, to: items.count, by: 2) { d.items.append((items[i], items[i + 1])) }
            case 0x63:  // GLOBAL "module\nname\n"
                let module = try line(at), name = try line(at)
                try pushGlobal(module + "." + name, at)
            case 0x93:  // STACK_GLOBAL
                let name = try pop(at), module = try pop(at)
                guard case .string(let m) = module, case .string(let n) = name else { throw bad("bad STACK_GLOBAL", at: at) }
                try pushGlobal(m + "." + n, at)
            case 0x51:  // BINPERSID
                stack.append(try storage(try pop(at), at))
            case 0x52:  // REDUCE
                let args = try pop(at), callable = try pop(at)
                stack.append(try reduce(callable, args, at))
            case 0x62:  // BUILD: only an OrderedDict's __dict__ (state_dict()._metadata), which is dropped
                let state = try pop(at)
                guard case .dict = try top(at), case .dict = state else {
                    throw refuse("BUILD (setting object state)", at: at)
                }
            default:
                let names: [UInt8: String] = [0x69: "INST", 0x6f: "OBJ", 0x81: "NEWOBJ", 0x92: "NEWOBJ_EX",
                                              0x82: "EXT1", 0x83: "EXT2", 0x84: "EXT4", 0x50: "PERSID"]
                if let name = names[op] { throw refuse("\(name) (building an object)", at: at) }
                throw bad(String(format: "unsupported opcode 0x%02x", op), at: at)
            }
            guard stack.count <= 1 << 20, memo.count <= 1 << 22 else { throw bad("pickle too deep", at: at) }
        }
    }

    private func top(_ at: Int) throws(TorchCheckpointError) -> PickleValue {
        guard let v = stack.last, stack.count > (marks.last ?? 0) else { throw bad("stack underflow", at: at) }
        return v
    }

    private mutating func line(_ at: Int) throws(TorchCheckpointError) -> String {
        guard let end = data[position...].firstIndex(of: 0x0a), end - position <= 256 else {
            throw bad("unterminated GLOBAL", at: at)
        }
        defer { position = end + 1 }
        return text(UnsafeRawBufferPointer(rebasing: data[position..<end]))
    }

    private mutating func pushGlobal(_ name: String, _ at: Int) throws(TorchCheckpointError) {
        guard Self.allowedGlobals.contains(name) else { throw refuse("GLOBAL '\(name)'", at: at) }
        stack.append(.global(name))
    }

    /// `('storage', torch.XStorage, key, location, numel)`.
    private func storage(_ pid: PickleValue, _ at: Int) throws(TorchCheckpointError) -> PickleValue {
        guard case .tuple(let t) = pid, t.count == 5, case .string("storage") = t[0], case .global(let type) = t[1],
              case .string(let key) = t[2], case .int(let count) = t[4], count >= 0 else {
            throw refuse("a persistent id that is not a torch storage record", at: at)
        }
        guard let dtype = Self.storageTypes[type] else {
            throw .unsupported(path: path, reason: "storage type \(type) (tensors must be float32, float16, bfloat16 "
                               + "or integer)")
        }
        guard let bytes = storageSizes[key] else { throw bad("storage '\(key)' has no data/\(key) member", at: at) }
        guard count <= bytes / dtype.size else {
            throw bad("storage '\(key)' claims \(count) elements but holds \(bytes) bytes", at: at)
        }
        return .storage(StorageRef(key: key, dtype: dtype, count: count))
    }

    private func reduce(_ callable: PickleValue, _ args: PickleValue, _ at: Int) throws(TorchCheckpointError) -> PickleValue {
        guard case .global(let name) = callable, case .tuple(let a) = args else {
            throw refuse("REDUCE of something other than a tensor-record function", at: at)
        }
        switch name {
        case "collections.OrderedDict":
            guard a.isEmpty else { throw refuse("OrderedDict built from arguments", at: at) }
            return .dict(DictBox())
        case "torch._utils._rebuild_tensor_v2":
            guard a.count >= 4, case .storage(let s) = a[0], case .int(let offset) = a[1],
                  let shape = ints(a[2]), let strides = ints(a[3]), shape.count == strides.count else {
                throw bad("_rebuild_tensor_v2 with unexpected arguments", at: at)
            }
            return .tensor(try record(s, offset, shape, strides, at))
        case "torch._utils._rebuild_parameter":
            guard a.count >= 1, case .tensor = a[0] else { throw bad("_rebuild_parameter without a tensor", at: at) }
            return a[0]
        default:
            throw refuse("REDUCE of '\(name)'", at: at)
        }
    }

    private func ints(_ v: PickleValue) -> [Int]? {
        guard case .tuple(let t) = v else { return nil }
        var out: [Int] = []
        for x in t {
            guard case .int(let i) = x else { return nil }
            out.append(i)
        }
        return out
    }

    /// Checks that every element the view addresses lies inside its storage.
    private func record(_ s: StorageRef, _ offset: Int, _ shape: [Int], _ strides: [Int],
                        _ at: Int) throws(TorchCheckpointError) -> TensorRecord {
        guard offset >= 0, shape.allSatisfy({ $0 >= 0 }), strides.allSatisfy({ $0 >= 0 }), shape.count <= 16 else {
            throw bad("tensor with a negative offset, size or stride", at: at)
        }
        var count = 1, last = offset
        for (n, st) in zip(shape, strides) {
            let (c, o1) = count.multipliedReportingOverflow(by: n)
            guard !o1 else { throw bad("tensor size overflows", at: at) }
            count = c
            if n > 0 {
                let (span, o2) = (n - 1).multipliedReportingOverflow(by: st)
                let (l, o3) = last.addingReportingOverflow(span)
                guard !o2, !o3 else { throw bad("tensor stride overflows", at: at) }
                last = l
            }
        }
        guard count == 0 || last < s.count else {
            throw bad("tensor view reaches element \(last) of a \(s.count)-element storage", at: at)
        }
        return TensorRecord(storage: s, offset: offset, shape: shape, strides: strides)
    }
}
