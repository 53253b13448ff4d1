import Foundation
import GraphRuntime
import Synchronization
import Tensors

// Small node types that do real (cheap) work on scalars, strings and tensors. The graph front end's tests
// (validation, planning) and the executor's tests (running, caching, liveness, events) build graphs from them.
// Register them with `try NodeRegistry(packs: [TestNodesPack.self])`.

/// The test node pack: every node type below, under names starting with `test.`.
public enum TestNodesPack: NodePack {
    public static let name = "TestNodes"
    public static let nodes: [any Node.Type] = [
        ConstIntNode.self, ConstFloatNode.self, ConstStringNode.self, AddNode.self, ScaleNode.self,
        ConcatNode.self, CombineNode.self, MakeTensorNode.self, TensorSumNode.self, ReadTextNode.self,
        FailNode.self, SinkNode.self,
    ]

    /// A registry holding only the test nodes.
    public static func registry() -> NodeRegistry {
        // Test node names are unique by construction, so registration cannot fail.
        try! NodeRegistry(packs: [TestNodesPack.self])
    }
}

/// What test nodes observed while running: sink values and run counts, grouped by a caller-chosen `key`
/// param so tests running in parallel don't see each other's records.
public final class TestRecorder: Sendable {
    /// One value a sink received.
    public struct Entry: Sendable {
        public var nodeID: String
        public var input: String
        public var value: Value

        public init(nodeID: String, input: String, value: Value) {
            self.nodeID = nodeID
            self.input = input
            self.value = value
        }
    }

    public static let shared = TestRecorder()

    private let state = Mutex<(entries: [String: [Entry]], runs: [String: [String]])>((entries: [:], runs: [:]))

    public init() {}

    /// Records that node `nodeID` ran under `key` (every test node with a `key` param does this).
    public func recordRun(key: String, nodeID: String) {
        state.withLock { $0.runs[key, default: []].append(nodeID) }
    }

    public func record(key: String, _ entry: Entry) {
        state.withLock { $0.entries[key, default: []].append(entry) }
    }

    /// Values sinks received under `key`, in the order they ran.
    public func entries(key: String) -> [Entry] { state.withLock { $0.entries[key] ?? [] } }

    /// Node ids that ran under `key`, in the order they ran (a node appears once per run of it).
    public func runs(key: String) -> [String] { state.withLock { $0.runs[key] ?? [] } }

    /// Forgets everything recorded under `key`.
    public func reset(key: String) {
        state.withLock {
            $0.entries[key] = nil
            $0.runs[key] = nil
        }
    }
}

/// The `key` param every test node declares: runs are recorded in `TestRecorder.shared` under it when not empty.
private let keyParam = ParamSpec("key", .string, default: .string(""),
                                 doc: "TestRecorder key; when set, each run of this node is recorded under it")

private func noteRun(_ params: ParamValues, _ context: RunContext) {
    if let key = params.optionalString("key") { TestRecorder.shared.recordRun(key: key, nodeID: context.nodeID) }
}

/// `test.const_int`: a constant integer source. Output `value: Int`.
public struct ConstIntNode: Node {
    public static let descriptor = NodeDescriptor(
        typeName: "test.const_int", version: 1, summary: "A constant integer.",
        outputs: [OutputSpec("value", .int)],
        params: [ParamSpec("value", .int, default: .int(0)), keyParam])
    public init() {}
    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        noteRun(params, context)
        return ["value": .int(params.int("value"))]
    }
}

/// `test.const_float`: a constant float source with a range (`value` in -1000...1000). Output `value: Float`.
public struct ConstFloatNode: Node {
    public static let descriptor = NodeDescriptor(
        typeName: "test.const_float", version: 1, summary: "A constant float in [-1000, 1000].",
        outputs: [OutputSpec("value", .float)],
        params: [ParamSpec("value", .float, default: .float(0), min: -1000, max: 1000), keyParam])
    public init() {}
    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        noteRun(params, context)
        return ["value": .float(params.double("value"))]
    }
}

/// `test.const_string`: a constant string source. Param `text` is required. Output `text: String`.
public struct ConstStringNode: Node {
    public static let descriptor = NodeDescriptor(
        typeName: "test.const_string", version: 1, summary: "A constant string.",
        outputs: [OutputSpec("text", .string)],
        params: [ParamSpec("text", .string, doc: "the string (required)"), keyParam])
    public init() {}
    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        noteRun(params, context)
        return ["text": .string(params.string("text"))]
    }
}

/// `test.add`: `sum = a + (b ?? 0) + offset` on integers. Input `b` is optional.
public struct AddNode: Node {
    public static let descriptor = NodeDescriptor(
        typeName: "test.add", version: 1, summary: "Adds two integers and an offset.",
        inputs: [InputSpec("a", .int), InputSpec("b", .int, optional: true)],
        outputs: [OutputSpec("sum", .int)],
        params: [ParamSpec("offset", .int, default: .int(0), min: -100, max: 100), keyParam])
    public init() {}
    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        noteRun(params, context)
        let a = try inputs.optionalInt("a") ?? 0
        let b = try inputs.optionalInt("b") ?? 0
        return ["sum": .int(a + b + params.int("offset"))]
    }
}

/// `test.scale`: `out = x * factor`. Input `x` accepts Int or Float; `factor` is a float in [-10, 10].
public struct ScaleNode: Node {
    public static let descriptor = NodeDescriptor(
        typeName: "test.scale", version: 1, summary: "Multiplies a number by a factor.",
        inputs: [InputSpec("x", accepts: [.int, .float])],
        outputs: [OutputSpec("out", .float)],
        params: [ParamSpec("factor", .float, default: .float(1), min: -10, max: 10), keyParam])
    public init() {}
    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        noteRun(params, context)
        let x = try inputs.number("x")
        return ["out": .float(x * params.double("factor"))]
    }
}

/// `test.concat`: `text = a + separator + b` (just `a` when `b` is not connected).
public struct ConcatNode: Node {
    public static let descriptor = NodeDescriptor(
        typeName: "test.concat", version: 1, summary: "Joins two strings with a separator.",
        inputs: [InputSpec("a", .string), InputSpec("b", .string, optional: true)],
        outputs: [OutputSpec("text", .string)],
        params: [ParamSpec("separator", .string, default: .string(" ")), keyParam])
    public init() {}
    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        noteRun(params, context)
        let a = try inputs.string("a")
        if let b = try inputs.optionalString("b") { return ["text": .string(a + params.string("separator") + b)] }
        return ["text": .string(a)]
    }
}

/// `test.combine`: combines two floats by `mode` (a choice param: sum, product, max, divide).
/// Its `validate` hook rejects `divide` together with `strict: true`.
public struct CombineNode: Node {
    public static let descriptor = NodeDescriptor(
        typeName: "test.combine", version: 1, summary: "Combines two numbers (sum, product, max, divide).",
        inputs: [InputSpec("a", accepts: [.int, .float]), InputSpec("b", accepts: [.int, .float])],
        outputs: [OutputSpec("result", .float)],
        params: [
            ParamSpec("mode", .choice(["sum", "product", "max", "divide"]), default: .string("sum")),
            ParamSpec("strict", .bool, default: .bool(false), doc: "reject modes that can fail at run time"),
            keyParam,
        ])
    public init() {}

    public func validate(params: ParamValues) -> [String] {
        if params.string("mode") == "divide" && params.bool("strict") {
            return ["mode 'divide' can divide by zero and is not allowed with strict: true"]
        }
        return []
    }

    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        noteRun(params, context)
        let a = try inputs.number("a"), b = try inputs.number("b")
        let result: Double
        switch params.string("mode") {
        case "product": result = a * b
        case "max": result = max(a, b)
        case "divide":
            guard b != 0 else { throw NodeError.failed(node: context.nodeID, message: "division by zero") }
            result = a / b
        default: result = a + b
        }
        return ["result": .float(result)]
    }
}

/// `test.tensor`: a `[height, width]` tensor whose element i is `start + i * step`; also outputs its element
/// count. Two outputs, so a reference to it must name one (`node.tensor` or `node.count`).
/// `validate` rejects more than 4096 elements.
public struct MakeTensorNode: Node {
    public static let descriptor = NodeDescriptor(
        typeName: "test.tensor", version: 1, summary: "A [height, width] ramp tensor and its element count.",
        outputs: [OutputSpec("tensor", .tensor), OutputSpec("count", .int)],
        params: [
            ParamSpec("width", .int, default: .int(4), min: 1, max: 1024),
            ParamSpec("height", .int, default: .int(1), min: 1, max: 1024),
            ParamSpec("start", .float, default: .float(0)),
            ParamSpec("step", .float, default: .float(1)),
            keyParam,
        ])
    public init() {}

    public func validate(params: ParamValues) -> [String] {
        let n = params.int("width") * params.int("height")
        return n > 4096 ? ["width * height is \(n); at most 4096 elements are allowed"] : []
    }

    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        noteRun(params, context)
        let w = params.int("width"), h = params.int("height")
        let start = params.float("start"), step = params.float("step")
        let values = (0..<(w * h)).map { start + Float($0) * step }
        return ["tensor": .tensor(Tensor(shape: [h, w], values: values)), "count": .int(w * h)]
    }
}

/// `test.tensor_sum`: the sum of a tensor's elements (accepts Tensor, Latent or Image).
public struct TensorSumNode: Node {
    public static let descriptor = NodeDescriptor(
        typeName: "test.tensor_sum", version: 1, summary: "Sums a tensor's elements.",
        inputs: [InputSpec("tensor", accepts: [.tensor, .latent, .image])],
        outputs: [OutputSpec("sum", .float)],
        params: [keyParam])
    public init() {}
    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        noteRun(params, context)
        let t = try inputs.tensor("tensor")
        return ["sum": .float(Double(t.scalars.reduce(0, +)))]
    }
}

/// `test.read_text`: reads a UTF-8 text file. Its fingerprint is the file's size and an FNV-1a hash of its
/// bytes, so a cache must miss when the file changes.
public struct ReadTextNode: Node {
    public static let descriptor = NodeDescriptor(
        typeName: "test.read_text", version: 1, summary: "Reads a text file.",
        outputs: [OutputSpec("text", .string)],
        params: [ParamSpec("path", .path, doc: "file to read (required)"), keyParam])
    public init() {}

    public func fingerprint(params: ParamValues) throws -> String? {
        let path = params.string("path")
        guard let data = FileManager.default.contents(atPath: path) else {
            throw NodeError.io(path: path, message: "cannot read file")
        }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in data { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return "\(data.count)-\(String(hash, radix: 16))"
    }

    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        noteRun(params, context)
        let path = params.string("path")
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8)
        else { throw NodeError.io(path: path, message: "cannot read file as UTF-8 text") }
        return ["text": .string(text)]
    }
}

/// `test.fail`: passes `x` through, or throws `NodeError.failed` with `message` when `fail` is true.
public struct FailNode: Node {
    public static let descriptor = NodeDescriptor(
        typeName: "test.fail", version: 1, summary: "Fails on purpose (for error-path tests).",
        inputs: [InputSpec("x", accepts: [.int, .float, .string], optional: true)],
        outputs: [OutputSpec("x", .int)],
        params: [
            ParamSpec("fail", .bool, default: .bool(true)),
            ParamSpec("message", .string, default: .string("failed on purpose")),
            keyParam,
        ])
    public init() {}
    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        noteRun(params, context)
        if params.bool("fail") { throw NodeError.failed(node: context.nodeID, message: params.string("message")) }
        if let v = try inputs.optionalInt("x") { return ["x": .int(v)] }
        return ["x": .int(0)]
    }
}

/// `test.sink`: an output node (side effects, never cached). Records each connected input in
/// `TestRecorder.shared` under `key` (input `value`, plus optional `extra`). No outputs.
public struct SinkNode: Node {
    public static let descriptor = NodeDescriptor(
        typeName: "test.sink", version: 1, summary: "Records what it receives (an output node).",
        inputs: [
            InputSpec("value", accepts: [.int, .float, .string, .bool, .path, .tensor, .latent, .image]),
            InputSpec("extra", accepts: [.int, .float, .string, .bool, .path, .tensor, .latent, .image],
                      optional: true),
        ],
        params: [keyParam],
        hasSideEffects: true, diskCacheable: false)
    public init() {}
    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        noteRun(params, context)
        let key = params.string("key")
        for name in ["value", "extra"] {
            if let v = inputs[name] {
                TestRecorder.shared.record(key: key, .init(nodeID: context.nodeID, input: name, value: v))
            }
        }
        return [:]
    }
}
