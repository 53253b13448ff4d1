import DiffusionModels
import Foundation
import SanaGraphKit
import Tensors
import Testing
import TestSupport
@testable import FlowSolvers

/// Perturbed-attention guidance: the layer selection and guidance formula of diffusers' PAGMixin; the pictures
/// against SanaPAGPipeline are in Tests/CLITests/ModelWorkflowTests.swift.
@Suite struct PAGTests {
    static let names = (0..<12).map { "transformer_blocks.\($0).attn1" }

    @Test("pag_applied_layers splits at commas outside braces")
    func patternsSplit() {
        #expect(PAGOptions.patterns(" transformer_blocks.8 , blocks\\.{1,2}\\.,") == ["transformer_blocks.8", "blocks\\.{1,2}\\."])
        #expect(PAGOptions.patterns("") == [])
    }

    @Test("Layers are chosen by regex search, as diffusers does: 'transformer_blocks.1' also picks 10 and 11")
    func layersAreSearched() throws {
        #expect(try PerturbedAttentionGuidance.layers(matching: ["transformer_blocks.1"], in: Self.names, node: "s") == [1, 10, 11])
        #expect(try PerturbedAttentionGuidance.layers(matching: ["transformer_blocks.1.attn1"], in: Self.names, node: "s") == [1])
        #expect(try PerturbedAttentionGuidance.layers(matching: ["blocks\\.(2|3)\\."], in: Self.names, node: "s") == [2, 3])
    }

    @Test("A pattern that matches no layer is an error naming the param and the pattern")
    func unmatchedPatternIsAnError() {
        #expect { _ = try PerturbedAttentionGuidance.layers(matching: ["mid"], in: Self.names, node: "s") } throws: { e in
            "\(e)".contains("pag_applied_layers") && "\(e)".contains("'mid'")
        }
    }

    @Test("The adaptive scale falls by pag_adaptive_scale per timestep below 1000 and stops at 0")
    func adaptiveScale() {
        let o = PAGOptions(scale: 3, adaptiveScale: 0.004, appliedLayers: ["x"])
        #expect(abs(o.scale(atTimestep: 1000) - 3) < 1e-6)
        #expect(abs(o.scale(atTimestep: 500) - 1) < 1e-6)
        #expect(o.scale(atTimestep: 100) == 0)
        #expect(PAGOptions(scale: 3, appliedLayers: ["x"]).scale(atTimestep: 10) == 3)
        #expect(!PAGOptions(scale: 0, appliedLayers: ["x"]).isActive)
    }

    @Test("The guided velocity is u + g(c - u) + s(c - p), or c + s(c - p) without CFG")
    func combine() {
        let c = Tensor(shape: [2], values: [1, 2]), u = Tensor(shape: [2], values: [0, 1]), p = Tensor(shape: [2], values: [0.5, 3])
        let both = PerturbedAttentionGuidance.combine(text: c, uncond: u, perturbed: p, guidance: 4, pagScale: 2)
        let expected: [Float] = [5, 3]  // [0 + 4·1 + 2·0.5, 1 + 4·1 + 2·(−1)]
        #expect(both.scalars == expected)
        let pagOnly = PerturbedAttentionGuidance.combine(text: c, uncond: nil, perturbed: p, guidance: 4, pagScale: 2)
        let expectedPAG: [Float] = [2, 0]  // [1 + 2·0.5, 2 + 2·(−1)]
        #expect(pagOnly.scalars == expectedPAG)
    }
}
