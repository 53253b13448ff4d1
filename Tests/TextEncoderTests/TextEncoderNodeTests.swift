import DiffusionModels
import Foundation
import GraphRuntime
import Safetensors
import TensorIO
import Tensors
import Testing
import TestSupport
@testable import TextEncoder

/// text_encoder.load → text.encode → tensor.save from YAML graphs, node params and error paths.
@Suite struct TextEncoderNodeTests {
    static let root = TestSupport.fixture("TextEncoder/tiny-gemma2")

    static func graph(encoder: String, tokenizer: String? = nil, text: String, instruction: String = "default",
                      length: Int = 300, splitLines: Bool = false, output: String) -> String {
        let tok = tokenizer.map { ", tokenizer: \"\($0)\"" } ?? ""
        return """
        sanagraph: 1
        description: encode a prompt and save the conditioning
        nodes:
          encoder: {type: text_encoder.load, params: {path: "\(encoder)"\(tok)}}
          positive:
            type: text.encode
            inputs: {encoder: encoder}
            params:
              text: \(text)
              instruction: "\(instruction)"
              max_sequence_length: \(length)
              split_lines: \(splitLines)
          save: {type: tensor.save, inputs: {tensor: positive}, params: {path: "\(output)", name: "positive"}}
        """
    }

    static func run(_ yaml: String) throws {
        let registry = try NodeRegistry(packs: [TextEncoderPack.self, TensorIOPack.self])
        let graph = try GraphLoader.load(yaml: yaml, file: "encode.yaml", registry: registry)
        try Executor().run(graph, plan: Planner.plan(graph))
    }

    @Test func yamlGraphEncodesABatchAndSavesEmbeddingsAndMaskLikeDiffusers() throws {
        let dir = TestSupport.temporaryDirectory("te-graph")
        defer { try? FileManager.default.removeItem(at: dir) }
        let output = dir.appendingPathComponent("cond.safetensors").path
        // Tokenizer defaults to the sibling tokenizer/ folder; two prompts, one per line (a blank line is skipped).
        let text = "|\n        A Red Circle above a blue square\n\n          ÉCOLE Straße ΣΟΦΟΣ 東京  \t"
        try Self.run(Self.graph(encoder: Self.root + "/text_encoder", text: text, splitLines: true, output: output))
        let saved = try SafetensorsFile(path: output)
        #expect(saved.names == ["positive.embeddings", "positive.mask"])
        let expected = try SafetensorsFile(path: Self.root + "/expected.safetensors")
        let emb = try saved.tensor("positive.embeddings")
        #expect(emb.shape == [2, 300, 64])
        #expect(TestSupport.relativeError(emb, try expected.tensor("chi_batch.embeddings")) <= 1e-4)
        #expect(try saved.tensor("positive.mask").scalars == expected.tensor("chi_batch.mask").scalars)
    }

    @Test func noneInstructionEncodesLikeThePipelinesNegativeBranch() throws {
        let dir = TestSupport.temporaryDirectory("te-graph")
        defer { try? FileManager.default.removeItem(at: dir) }
        let output = dir.appendingPathComponent("neg.safetensors").path
        try Self.run(Self.graph(encoder: Self.root + "/text_encoder/", tokenizer: Self.root + "/tokenizer/tokenizer.json",
                                text: "\"  Blurry, LOW quality \"", instruction: "none", output: output))
        let saved = try SafetensorsFile(path: output)
        let expected = try SafetensorsFile(path: Self.root + "/expected.safetensors")
        #expect(TestSupport.relativeError(try saved.tensor("positive.embeddings"),
                                          try expected.tensor("negative.embeddings")) <= 1e-4)
        #expect(try saved.tensor("positive.mask").scalars == expected.tensor("negative.mask").scalars)
    }

    @Test func paramsMapToPromptsAndInstructions() {
        func params(_ v: [String: ParamValue]) -> ParamValues { ParamValues(v) }
        #expect(TextEncode.prompts(params(["text": .string(" A \n b ")])) == [" A \n b "])
        #expect(TextEncode.prompts(params(["text": .string("a\n\n  \nb\n"), "split_lines": .bool(true)])) == ["a", "b"])
        #expect(TextEncode.instruction(params(["instruction": .string("default")])) == .default)
        #expect(TextEncode.instruction(params(["instruction": .string("none")])) == .none)
        #expect(TextEncode.instruction(params(["instruction": .string("custom"),
                                               "custom_instruction": .string("Say: ")])) == .custom("Say: "))
        #expect(!TextEncode().validate(params: params(["text": .string(" \n"), "split_lines": .bool(true)])).isEmpty)
        #expect(TextEncoderLoad.tokenizerPath(params(["path": .string("/m/text_encoder/")])) == "/m/tokenizer")
        #expect(TextEncoderLoad.tokenizerPath(params(["path": .string("/m/te"), "tokenizer": .string("/t")])) == "/t")
    }

    @Test func instructionTyposAndMismatchedCustomTextAreValidationErrors() throws {
        let registry = try NodeRegistry(packs: [TextEncoderPack.self, TensorIOPack.self])
        func errors(_ instruction: String, custom: String?) -> String {
            var yaml = Self.graph(encoder: Self.root + "/text_encoder", text: "a cat", instruction: instruction,
                                  output: "unused.safetensors")
            if let custom {
                yaml = yaml.replacingOccurrences(of: "max_sequence_length", with: "custom_instruction: \"\(custom)\"\n      max_sequence_length")
            }
            do {
                _ = try GraphLoader.load(yaml: yaml, file: "encode.yaml", registry: registry)
                return ""
            } catch {
                #expect(error.exitCategory == .invalidGraph)
                return "\(error)"
            }
        }
        #expect(errors("defualt", custom: nil).contains("did you mean 'default'"))
        #expect(errors("Describe the image: ", custom: nil).contains("is not one of default, none, custom"))
        #expect(errors("custom", custom: nil).contains("needs the text in custom_instruction"))
        #expect(errors("none", custom: "Say: ").contains("custom_instruction is set but instruction is 'none'"))
        #expect(errors("custom", custom: "Say: ") == "")
        #expect(errors("default", custom: nil) == "")
    }

    @Test func missingTokenizerFailsWithModelFileExitCodeNamingTheFile() throws {
        let dir = TestSupport.temporaryDirectory("te-graph")
        defer { try? FileManager.default.removeItem(at: dir) }
        // A text_encoder/ copy with no sibling tokenizer/ folder.
        let te = dir.appendingPathComponent("text_encoder").path
        try FileManager.default.copyItem(atPath: Self.root + "/text_encoder", toPath: te)
        let output = dir.appendingPathComponent("out.safetensors").path
        do {
            try Self.run(Self.graph(encoder: te, text: "a cat", output: output))
            Issue.record("expected the run to fail")
        } catch {
            #expect(error.exitCategory == .modelFile && error.exitCategory.exitCode == 4)
            #expect("\(error)".contains(dir.appendingPathComponent("tokenizer").path), "\(error)")
        }
        #expect(!FileManager.default.fileExists(atPath: output))
    }

    @Test func missingTextEncoderFolderFailsWithModelFileExitCode() throws {
        let dir = TestSupport.temporaryDirectory("te-graph")
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = dir.appendingPathComponent("text_encoder").path
        let output = dir.appendingPathComponent("out.safetensors").path
        do {
            try Self.run(Self.graph(encoder: missing, tokenizer: Self.root + "/tokenizer", text: "a cat", output: output))
            Issue.record("expected the run to fail")
        } catch {
            #expect(error.exitCategory == .modelFile && error.exitCategory.exitCode == 4)
            #expect("\(error)".contains(missing), "\(error)")
        }
        #expect(!FileManager.default.fileExists(atPath: output))
    }

    @Test func fingerprintCoversWeightsConfigAndTokenizer() throws {
        let dir = TestSupport.temporaryDirectory("te-fp")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(atPath: Self.root + "/text_encoder", toPath: dir.appendingPathComponent("text_encoder").path)
        try FileManager.default.copyItem(atPath: Self.root + "/tokenizer", toPath: dir.appendingPathComponent("tokenizer").path)
        let node = TextEncoderLoad()
        let params = ParamValues(["path": .string(dir.appendingPathComponent("text_encoder").path)])
        let first = try node.fingerprint(params: params)
        let again = try node.fingerprint(params: params)
        #expect(first != nil && first == again)
        // Editing the tokenizer (the default sibling folder) changes the fingerprint.
        let tokenizer = dir.appendingPathComponent("tokenizer/tokenizer.json")
        var data = try Data(contentsOf: tokenizer)
        data.append(contentsOf: Array("\n".utf8))
        try data.write(to: tokenizer)
        let edited = try node.fingerprint(params: params)
        #expect(edited != first)
    }

    @Test func descriptorsDeclareTheDocumentedSocketsAndDefaults() {
        let load = TextEncoderLoad.descriptor, encode = TextEncode.descriptor
        #expect(load.typeName == "text_encoder.load" && load.outputs.map(\.name) == ["encoder"])
        #expect(load.outputs[0].type == .textEncoderModel && load.params.map(\.name) == ["path", "tokenizer", "device", "precision"])
        #expect(encode.typeName == "text.encode" && encode.inputs.map(\.name) == ["encoder"])
        #expect(encode.outputs.map(\.name) == ["conditioning"] && encode.outputs[0].type == .conditioning)
        let defaults = Dictionary(uniqueKeysWithValues: encode.params.map { ($0.name, $0.defaultValue) })
        #expect(defaults["instruction"] == .string("default") && defaults["max_sequence_length"] == .int(300))
        #expect(defaults["text"] == .some(nil) && defaults["split_lines"] == .bool(false))
    }
}
