import SanaGraphKit
import DiffusionModels
import Tensors

/// Operations on `Conditioning` values (embeddings [B, L, D] + mask [B, L]); docs/workflows.md says what each does.
public enum ConditioningOps {
    /// Checks that `c` is [B, L, D] with a [B, L] mask.
    static func check(_ c: Conditioning, _ name: String, node: String) throws {
        let e = c.embeddings.shape
        guard e.count == 3, c.mask.shape == [e[0], e[1]] else {
            throw NodeError.invalidInput(node: node, message: "\(name) has embeddings \(e) and mask \(c.mask.shape); "
                + "expected [B, L, D] and [B, L] (connect a text.encode output)")
        }
    }

    /// `a` then `b` along the token axis: embeddings [B, La + Lb, D], masks concatenated.
    public static func concat(_ a: Conditioning, _ b: Conditioning, node: String) throws -> Conditioning {
        try check(a, "a", node: node)
        try check(b, "b", node: node)
        let (ea, eb) = (a.embeddings.shape, b.embeddings.shape)
        guard ea[0] == eb[0], ea[2] == eb[2] else {
            throw NodeError.invalidInput(node: node, message: "a is \(ea) and b is \(eb): the batch and the width D "
                + "must match (encode both with the same text encoder and the same number of prompts)")
        }
        return Conditioning(embeddings: rowsConcatenated(a.embeddings, b.embeddings, rows: ea[0]),
                            mask: rowsConcatenated(a.mask, b.mask, rows: ea[0]))
    }

    /// `weight`·a + (1 − weight)·b row by row, mask = max(a.mask, b.mask); a and b have the same shape.
    public static func average(_ a: Conditioning, _ b: Conditioning, weight: Float, node: String) throws -> Conditioning {
        try check(a, "a", node: node)
        try check(b, "b", node: node)
        guard a.embeddings.shape == b.embeddings.shape else {
            throw NodeError.invalidInput(node: node, message: "a is \(a.embeddings.shape) and b is "
                + "\(b.embeddings.shape): averaging needs the same shape; encode both with the same instruction and "
                + "max_sequence_length")
        }
        let w = weight
        let embeddings = zip(a.embeddings.scalars, b.embeddings.scalars).map { w * $0 + (1 - w) * $1 }
        return Conditioning(embeddings: Tensor(shape: a.embeddings.shape, values: embeddings),
                            mask: Tensor(shape: a.mask.shape, values: zip(a.mask.scalars, b.mask.scalars).map(max)))
    }

    /// Zero embeddings, the mask kept.
    public static func zero(_ c: Conditioning, node: String) throws -> Conditioning {
        try check(c, "conditioning", node: node)
        return Conditioning(embeddings: Tensor(repeating: 0, shape: c.embeddings.shape), mask: c.mask.copy())
    }

    /// Concatenates two tensors of `rows` leading rows along their second axis.
    static func rowsConcatenated(_ a: Tensor, _ b: Tensor, rows: Int) -> Tensor {
        let (ra, rb) = (a.count / rows, b.count / rows)
        var shape = a.shape
        shape[1] += b.shape[1]
        let sa = a.scalars, sb = b.scalars
        var out = [Float]()
        out.reserveCapacity(a.count + b.count)
        for r in 0..<rows {
            out += sa[r * ra ..< (r + 1) * ra]
            out += sb[r * rb ..< (r + 1) * rb]
        }
        return Tensor(shape: shape, values: out)
    }
}

/// `conditioning.concat`: both prompts' tokens, one after the other.
public struct ConditioningConcatNode: Node {
    public static let descriptor = NodeDescriptor(
        typeName: "conditioning.concat", version: 1,
        summary: "Concatenate two conditionings along the tokens (the denoiser attends to both prompts)",
        inputs: [InputSpec("a", .conditioning, doc: "first prompt (text.encode)"),
                 InputSpec("b", .conditioning, doc: "second prompt, same batch and width")],
        outputs: [OutputSpec("conditioning", .conditioning, doc: "[B, La + Lb, D], masks concatenated")])

    public init() {}

    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        let c = try ConditioningOps.concat(try inputs.conditioning("a"), try inputs.conditioning("b"),
                                           node: context.nodeID)
        return ["conditioning": .conditioning(c)]
    }
}

/// `conditioning.average`: a weighted average of two prompts' embeddings.
public struct ConditioningAverageNode: Node {
    public static let descriptor = NodeDescriptor(
        typeName: "conditioning.average", version: 1,
        summary: "Weighted average of two conditionings of the same shape: weight·a + (1 − weight)·b",
        inputs: [InputSpec("a", .conditioning, doc: "first prompt (text.encode)"),
                 InputSpec("b", .conditioning, doc: "second prompt, encoded with the same settings (same shape)")],
        outputs: [OutputSpec("conditioning", .conditioning, doc: "the average; mask = max of the two masks")],
        params: [ParamSpec("weight", .float, default: .float(0.5), min: 0, max: 1,
                           doc: "share of 'a' (1 = a only, 0 = b only)")])

    public init() {}

    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        let c = try ConditioningOps.average(try inputs.conditioning("a"), try inputs.conditioning("b"),
                                            weight: params.float("weight"), node: context.nodeID)
        return ["conditioning": .conditioning(c)]
    }
}

/// `conditioning.zero`: the same shape and mask with zero embeddings.
public struct ConditioningZeroNode: Node {
    public static let descriptor = NodeDescriptor(
        typeName: "conditioning.zero", version: 1,
        summary: "Zero the embeddings of a conditioning, keeping its shape and mask",
        inputs: [InputSpec("conditioning", .conditioning, doc: "a prompt (text.encode)")],
        outputs: [OutputSpec("conditioning", .conditioning, doc: "zero embeddings, the same mask")])

    public init() {}

    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        ["conditioning": .conditioning(try ConditioningOps.zero(try inputs.conditioning("conditioning"),
                                                               node: context.nodeID))]
    }
}
