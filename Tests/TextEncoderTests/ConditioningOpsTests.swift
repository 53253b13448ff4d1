import DiffusionModels
import Foundation
import GraphRuntime
import Tensors
import Testing
import TestSupport
@testable import TextEncoder

/// conditioning.concat / average / zero on small hand-written tensors (docs/workflows.md, "Conditioning ops").
@Suite("Conditioning operations")
struct ConditioningOpsTests {
    // a: B = 2, L = 2, D = 3; mask row 0 = [1, 1], row 1 = [1, 0].
    static let a = Conditioning(embeddings: Tensor(shape: [2, 2, 3], values: (1...12).map(Float.init)),
                                mask: Tensor(shape: [2, 2], values: [1, 1, 1, 0]))
    // b: B = 2, L = 1, D = 3.
    static let b1 = Conditioning(embeddings: Tensor(shape: [2, 1, 3], values: [-1, -2, -3, -4, -5, -6]),
                                 mask: Tensor(shape: [2, 1], values: [1, 0]))
    // c: same shape as a; mask row 1 = [0, 1].
    static let c = Conditioning(embeddings: Tensor(shape: [2, 2, 3], values: (1...12).map { Float(-2 * $0) }),
                                mask: Tensor(shape: [2, 2], values: [1, 0, 0, 1]))

    static func run(_ node: any Node, _ values: [String: Value], _ params: [String: ParamValue] = [:]) throws -> Conditioning {
        var p: [String: ParamValue] = [:]
        for spec in type(of: node).descriptor.params { p[spec.name] = spec.defaultValue }
        for (k, v) in params { p[k] = v }
        let out = try node.run(inputs: NodeInputs(values, nodeID: "op"), params: ParamValues(p),
                               context: RunContext(nodeID: "op"))
        return try #require(out["conditioning"]?.payload(as: Conditioning.self))
    }

    @Test("concat puts b's tokens after a's, row by row, masks alike")
    func concat() throws {
        let out = try Self.run(ConditioningConcatNode(), ["a": .conditioning(Self.a), "b": .conditioning(Self.b1)])
        #expect(out.embeddings.shape == [2, 3, 3])
        #expect(out.embeddings.scalars == [1, 2, 3, 4, 5, 6, -1, -2, -3, 7, 8, 9, 10, 11, 12, -4, -5, -6])
        #expect(out.mask.shape == [2, 3])
        #expect(out.mask.scalars == [1, 1, 1, 1, 0, 0])
    }

    @Test("average is weight·a + (1 − weight)·b with the mask the union (max) of both")
    func average() throws {
        let out = try Self.run(ConditioningAverageNode(), ["a": .conditioning(Self.a), "b": .conditioning(Self.c)],
                               ["weight": .float(0.25)])
        // 0.25·v + 0.75·(−2v) = −1.25·v
        #expect(out.embeddings.shape == [2, 2, 3])
        for (got, v) in zip(out.embeddings.scalars, (1...12).map(Float.init)) { #expect(abs(got + 1.25 * v) < 1e-6) }
        #expect(out.mask.scalars == [1, 1, 1, 1])
        let onlyA = try Self.run(ConditioningAverageNode(), ["a": .conditioning(Self.a), "b": .conditioning(Self.c)],
                                 ["weight": .float(1)])
        #expect(onlyA.embeddings.scalars == Self.a.embeddings.scalars)
    }

    @Test("zero keeps the shape and mask with all-zero embeddings")
    func zero() throws {
        let out = try Self.run(ConditioningZeroNode(), ["conditioning": .conditioning(Self.a)])
        #expect(out.embeddings.shape == [2, 2, 3])
        #expect(out.embeddings.scalars.allSatisfy { $0 == 0 })
        #expect(out.mask.scalars == Self.a.mask.scalars)
    }

    @Test("Mismatched shapes are errors that name the node and say what to do")
    func mismatches() {
        #expect { _ = try Self.run(ConditioningAverageNode(), ["a": .conditioning(Self.a), "b": .conditioning(Self.b1)]) }
            throws: { "\($0)".contains("op") && "\($0)".contains("same shape") }
        let wide = Conditioning(embeddings: Tensor(repeating: 0, shape: [2, 1, 4]), mask: Tensor(repeating: 1, shape: [2, 1]))
        #expect { _ = try Self.run(ConditioningConcatNode(), ["a": .conditioning(Self.a), "b": .conditioning(wide)]) }
            throws: { "\($0)".contains("width D") }
        let broken = Conditioning(embeddings: Tensor(repeating: 0, shape: [2, 2, 3]), mask: Tensor(repeating: 1, shape: [2, 3]))
        #expect(throws: NodeError.self) { _ = try Self.run(ConditioningZeroNode(), ["conditioning": .conditioning(broken)]) }
    }
}
