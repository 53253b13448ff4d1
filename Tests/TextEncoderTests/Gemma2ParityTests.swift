import DiffusionModels
import Foundation
import GraphRuntime
import Safetensors
import Tensors
import Testing
import TestSupport
@testable import TextEncoder

/// Embeddings and masks against diffusers' `SanaPipeline.encode_prompt` on a tiny random Gemma-2
/// (fixtures: tools/reference/gemma2_encoder.py).
@Suite struct Gemma2ParityTests {
    static let root = TestSupport.fixture("TextEncoder/tiny-gemma2")

    struct Case: Decodable {
        var name: String
        var prompts: [String]
        var instruction: String
        var maxSequenceLength: Int
        enum CodingKeys: String, CodingKey { case name, prompts, instruction, maxSequenceLength = "max_sequence_length" }

        var promptInstruction: PromptInstruction {
            switch instruction {
            case "default": return .default
            case "none": return .none
            default: return .custom(instruction)
            }
        }
    }

    struct Preprocess: Decodable { var input: String; var expected: String }

    struct Cases: Decodable {
        var cases: [Case]
        var defaultInstruction: String
        var nChi: Int
        var preprocess: [Preprocess]
        enum CodingKeys: String, CodingKey {
            case cases, defaultInstruction = "default_instruction", nChi = "n_chi", preprocess
        }
    }

    static func cases() throws -> Cases {
        try JSONDecoder().decode(Cases.self, from: Data(contentsOf: URL(fileURLWithPath: root + "/cases.json")))
    }

    static func encoder(_ textEncoder: String = root + "/text_encoder") throws -> SanaTextEncoder {
        try SanaTextEncoder.load(textEncoder: textEncoder, tokenizer: root + "/tokenizer")
    }

    static func check(_ c: Conditioning, _ name: String, file: SafetensorsFile, tolerance: Float = 1e-4) throws {
        let emb = try file.tensor(name + ".embeddings"), mask = try file.tensor(name + ".mask")
        #expect(c.embeddings.shape == emb.shape, "\(name)")
        #expect(c.mask.shape == mask.shape, "\(name)")
        guard c.embeddings.shape == emb.shape else { return }
        let err = TestSupport.relativeError(c.embeddings, emb)
        #expect(err <= tolerance, "\(name): relative error \(err)")
        #expect(c.mask.scalars == mask.scalars, "\(name)")
    }

    @Test func defaultInstructionMatchesDiffusersTextAndTokenCount() throws {
        let cases = try Self.cases()
        #expect(SanaTextEncoder.defaultInstruction == cases.defaultInstruction)
        let encoder = try Self.encoder()
        #expect(try encoder.tokenizer.encode(SanaTextEncoder.defaultInstruction).count == cases.nChi)
    }

    @Test func preprocessingIsPythonLowerAndStrip() throws {
        for p in try Self.cases().preprocess {
            #expect(SanaTextEncoder.preprocess(p.input) == p.expected, "\(p.input.debugDescription)")
        }
    }

    @Test func encodePromptMatchesDiffusersForEveryCase() throws {
        let encoder = try Self.encoder()
        let expected = try SafetensorsFile(path: Self.root + "/expected.safetensors")
        let context = RunContext(nodeID: "test")
        let cases = try Self.cases().cases
        #expect(cases.count >= 6)
        for c in cases {
            let out = try encoder.encode(prompts: c.prompts, instruction: c.promptInstruction,
                                         maxSequenceLength: c.maxSequenceLength, context: context)
            try Self.check(out, c.name, file: expected)
        }
    }

    @Test func skipPaddingKeepsEveryComputedRowAndZeroesThePaddingPastTheLongestPrompt() throws {
        let encoder = try Self.encoder()
        let expected = try SafetensorsFile(path: Self.root + "/expected.safetensors")
        let context = RunContext(nodeID: "test")
        var sawPadding = false
        for c in try Self.cases().cases {
            let full = try encoder.encode(prompts: c.prompts, instruction: c.promptInstruction,
                                          maxSequenceLength: c.maxSequenceLength, context: context)
            let skipped = try encoder.encode(prompts: c.prompts, instruction: c.promptInstruction,
                                             maxSequenceLength: c.maxSequenceLength, skipPadding: true, context: context)
            #expect(skipped.mask.scalars == full.mask.scalars, "\(c.name)")
            #expect(skipped.embeddings.shape == full.embeddings.shape, "\(c.name)")
            let d = full.embeddings.shape[2]
            let mask = full.mask.scalars, a = skipped.embeddings.scalars, b = full.embeddings.scalars
            let reference = try expected.tensor(c.name + ".embeddings").scalars
            for (row, m) in mask.enumerated() {
                let rows = row * d..<(row + 1) * d
                if m == 0, a[rows].allSatisfy({ $0 == 0 }) {
                    sawPadding = true
                } else {
                    // Real rows, and padding rows before the batch's longest prompt ends (computed like real
                    // ones): the same values up to summation order (attention sums run over fewer keys), so as
                    // close to diffusers as the full run is.
                    let scale = reference.lazy.map(abs).max() ?? 1
                    let vsFull = zip(a[rows], b[rows]).map { abs($0 - $1) }.max() ?? 0
                    let vsDiffusers = zip(a[rows], reference[rows]).map { abs($0 - $1) }.max() ?? 0
                    #expect(vsFull <= 1e-5 * scale, "\(c.name) row \(row): \(vsFull)")
                    #expect(vsDiffusers <= 1e-4 * scale, "\(c.name) row \(row): \(vsDiffusers)")
                }
            }
        }
        #expect(sawPadding)
    }

    @Test func shardedBF16CausalLMCheckpointWithModelPrefixLoadsAndMatches() throws {
        let encoder = try Self.encoder(Self.root + "/text_encoder_bf16_sharded")
        // fp32 layers on the weights as stored (decoded per panel in the GEMMs) where oneDNN does not pack bf16.
        #expect(encoder.model.kernel.hasSuffix("on bf16 weights decoded per panel") == TestSupport.keepsStoredBF16Weights,
                "\(encoder.model.kernel)")
        let expected = try SafetensorsFile(path: Self.root + "/expected.safetensors")
        let c = try Self.cases().cases[0]
        let out = try encoder.encode(prompts: c.prompts, instruction: .default, maxSequenceLength: 300,
                                     context: RunContext(nodeID: "test"))
        try Self.check(out, "bf16", file: expected)
    }

    @Test func shippedSanaShapesTextEncoderMatchesDiffusers() throws {
        let models = TestSupport.repositoryRoot.appendingPathComponent("models/sana-shapes").path
        let encoder = try SanaTextEncoder.load(textEncoder: models + "/text_encoder", tokenizer: models + "/tokenizer")
        #expect(encoder.model.config.hiddenSize == 256 && encoder.model.config.numHiddenLayers == 4)
        let out = try encoder.encode(prompts: ["A red circle above a small blue square"], instruction: .default,
                                     maxSequenceLength: 64, context: RunContext(nodeID: "test"))
        try Self.check(out, "sana_shapes", file: try SafetensorsFile(path: Self.root + "/expected.safetensors"))
    }

    @Test func cancellationStopsBetweenLayers() throws {
        let encoder = try Self.encoder()
        let token = CancellationToken()
        token.cancel()
        #expect(throws: NodeError.self) {
            _ = try encoder.encode(prompts: ["a"], instruction: .none, maxSequenceLength: 8,
                                   context: RunContext(nodeID: "test", cancellation: token))
        }
    }

    @Test func slidingWindowMaskHidesKeysOutsideTheWindow() {
        let m = Gemma2Model.additiveMask([[1, 1, 1, 1, 0]], length: 5, window: 2).scalars
        let hidden = -Float.greatestFiniteMagnitude
        // Row 3: keys 2 and 3 visible (i − j < 2), 0 and 1 outside the window, 4 in the future and padded.
        #expect(Array(m[15..<20]) == [hidden, hidden, 0, 0, hidden])
        // Row 4 (a pad query) still sees real keys inside the window.
        #expect(Array(m[20..<25]) == [hidden, hidden, hidden, 0, hidden])
    }
}
