import Foundation
import SanaGraphKit
import DiffusionModels
import Tensors

/// SANA's text encoder: the Gemma-2 decoder (on the CPU or a GPU) plus its tokenizer, with the prompt handling of
/// diffusers' `SanaPipeline.encode_prompt` / `_get_gemma_prompt_embeds` (sana-architecture.md §2).
public final class SanaTextEncoder: TextEncoderModel {
    public let model: any Gemma2Decoder
    public let tokenizer: GemmaTokenizer

    /// diffusers' default `complex_human_instruction`, joined with "\n" (single quotes around 'Enhanced prompt'
    /// as diffusers has them; the last line ends with a space and the prompt follows with no separator).
    public static let defaultInstruction = [
        "Given a user prompt, generate an 'Enhanced prompt' that provides detailed visual descriptions suitable for image generation. Evaluate the level of detail in the user prompt:",
        "- If the prompt is simple, focus on adding specifics about colors, shapes, sizes, textures, and spatial relationships to create vivid and concrete scenes.",
        "- If the prompt is already detailed, refine and enhance the existing details slightly without overcomplicating.",
        "Here are examples of how to transform or refine prompts:",
        "- User Prompt: A cat sleeping -> Enhanced: A small, fluffy white cat curled up in a round shape, sleeping peacefully on a warm sunny windowsill, surrounded by pots of blooming red flowers.",
        "- User Prompt: A busy city street -> Enhanced: A bustling city street scene at dusk, featuring glowing street lamps, a diverse crowd of people in colorful clothing, and a double-decker bus passing by towering glass skyscrapers.",
        "Please generate only the enhanced description for the prompt below and avoid including any additional commentary or evaluations:",
        "User Prompt: ",
    ].joined(separator: "\n")

    public init(model: any Gemma2Decoder, tokenizer: GemmaTokenizer) {
        self.model = model
        self.tokenizer = tokenizer
    }

    /// Loads `text_encoder/` and the tokenizer (a `tokenizer/` folder or a `tokenizer.json` file).
    public static func load(textEncoder: String, tokenizer: String, precision: Precision = .fp32) throws -> SanaTextEncoder {
        let tok = try GemmaTokenizer(contentsOf: tokenizer)
        return SanaTextEncoder(model: try Gemma2Model.load(folder: textEncoder, precision: precision), tokenizer: tok)
    }

    public var residentBytes: Int { model.residentBytes }

    /// The instruction text for `instruction`, or nil for none.
    public static func instructionText(_ instruction: PromptInstruction) -> String? {
        switch instruction {
        case .default: return defaultInstruction
        case .none: return nil
        case .custom(let text): return text
        }
    }

    /// `_text_preprocessing(text, clean_caption=False)`: Python's `text.lower().strip()`.
    public static func preprocess(_ text: String) -> String {
        PythonString.strip(PythonString.lower(text))
    }

    /// Token ids and attention masks as `tokenizer(texts, padding="max_length", max_length=maxLength,
    /// truncation=True, add_special_tokens=True)` gives them (right padding, right truncation; the special tokens
    /// of the post-processor are kept).
    public func tokenize(_ texts: [String], maxLength: Int) throws -> (ids: [[Int]], mask: [[Int]]) {
        guard let pad = tokenizer.padTokenId ?? model.config.padTokenId else {
            throw TokenizerFile.noPadToken(path: tokenizer.path)
        }
        var ids: [[Int]] = [], mask: [[Int]] = []
        for text in texts {
            var row = try tokenizer.encodeTruncated(text, maxLength: maxLength)
            let real = row.count
            row += Array(repeating: pad, count: maxLength - real)
            ids.append(row)
            mask.append(Array(repeating: 1, count: real) + Array(repeating: 0, count: maxLength - real))
        }
        return (ids, mask)
    }

    /// `SanaPipeline.encode_prompt` for a batch of prompts (one branch, `num_images_per_prompt = 1`):
    /// embeddings [B, maxSequenceLength, hidden] and mask [B, maxSequenceLength] (0/1 floats).
    ///
    /// With an instruction, each prompt becomes `instruction + lower(strip(prompt))`, padded to
    /// `n_chi + maxSequenceLength − 2` tokens (`n_chi` = token count of the instruction including `<bos>`), and
    /// positions `[0] + [−(maxSequenceLength−1) … −1]` are kept. Without one, prompts are padded to
    /// `maxSequenceLength` and all positions are kept.
    ///
    /// With `skipPadding`, the decoder runs only over the positions up to the longest prompt's last token and the
    /// padding rows of the result (mask 0) are zeros. The other rows are unchanged: padding is on the right and
    /// attention is causal, so no real token ever attends to a padding position. A denoiser masks padding rows
    /// out of cross-attention (diffusers' `(1 − mask)·−10000` bias), so the picture does not change either, while
    /// a prompt costs its own tokens instead of the full padded length (an empty negative prompt: 1 of 300).
    public func encode(prompts: [String], instruction: PromptInstruction, maxSequenceLength: Int,
                       skipPadding: Bool, context: RunContext) throws -> Conditioning {
        guard maxSequenceLength >= 1 else { throw TextEncoderRunError.badLength(maxSequenceLength) }
        guard !prompts.isEmpty else { throw TextEncoderRunError.noPrompts }
        var texts = prompts.map(Self.preprocess)
        let maxLengthAll: Int
        if let chi = Self.instructionText(instruction) {
            texts = texts.map { chi + $0 }
            let nChi = try tokenizer.encode(chi, addSpecialTokens: true).count
            maxLengthAll = nChi + maxSequenceLength - 2
        } else {
            maxLengthAll = maxSequenceLength
        }
        guard maxLengthAll >= maxSequenceLength - 1, maxLengthAll > 0 else {
            throw TextEncoderRunError.instructionTooShort
        }
        let (ids, mask) = try tokenize(texts, maxLength: maxLengthAll)
        try context.checkCancelled()
        let layers = model.config.numHiddenLayers
        // Positions the decoder runs over: all, or up to the last real token of the longest prompt.
        let used = skipPadding ? Swift.max(1, mask.map { $0.reduce(0, +) }.max() ?? 1) : maxLengthAll
        let hidden = try model(inputIds: ids.map { Array($0.prefix(used)) },
                               attentionMask: mask.map { Array($0.prefix(used)) }) { i in
            try context.progress(i + 1, of: layers)
        }
        // select_index = [0] + range(−max + 1, 0), as Python indexes a length-L axis.
        let select = [0] + (1..<maxSequenceLength).map { maxLengthAll - (maxSequenceLength - $0) }
        return Self.select(hidden: hidden, mask: mask, indices: select)
    }

    /// Gathers `indices` along the sequence axis of `hidden` [B, L, D] and of the mask; positions at or past
    /// `hidden`'s length (not computed, padding) give zero rows.
    static func select(hidden: Tensor, mask: [[Int]], indices: [Int]) -> Conditioning {
        let b = hidden.shape[0], l = hidden.shape[1], d = hidden.shape[2], n = indices.count
        let emb = Tensor(uninitialized: [b, n, d])
        let m = Tensor(uninitialized: [b, n])
        let src = hidden.storage.pointer + hidden.offset
        for bi in 0..<b {
            for (k, i) in indices.enumerated() {
                let dst = emb.storage.pointer + (bi * n + k) * d
                if i < l { dst.update(from: src + (bi * l + i) * d, count: d) } else { dst.update(repeating: 0, count: d) }
                m.storage.pointer[bi * n + k] = Float(mask[bi][i])
            }
        }
        return Conditioning(embeddings: emb, mask: m)
    }
}

/// Errors while encoding prompts.
public enum TextEncoderRunError: CategorizedError, Equatable {
    case badLength(Int)
    case noPrompts
    case instructionTooShort

    public var category: ErrorCategory { .nodeFailed }

    public var description: String {
        switch self {
        case .badLength(let n): return "max_sequence_length must be at least 1, got \(n)"
        case .noPrompts: return "no prompt to encode"
        case .instructionTooShort:
            return "the instruction tokenizes to too few tokens (fewer than the <bos> diffusers expects); "
                + "use instruction: none instead of an empty instruction"
        }
    }
}

extension GemmaTokenizer {
    /// `encode(text)` with HF's right truncation to `maxLength` tokens including the post-processor's special
    /// tokens: the text's ids are cut to `maxLength − specials`, then the specials are added.
    func encodeTruncated(_ text: String, maxLength: Int) throws -> [Int] {
        let body = try encode(text, addSpecialTokens: false)
        guard let template else { return Array(body.prefix(maxLength)) }
        var specials = 0
        for item in template { if case .special(let s) = item { specials += s.count } }
        let kept = Array(body.prefix(max(0, maxLength - specials)))
        var out: [Int] = []
        for item in template {
            switch item {
            case .special(let s): out.append(contentsOf: s)
            case .sequence: out.append(contentsOf: kept)
            }
        }
        return Array(out.prefix(maxLength))
    }
}

/// Python `str.lower()` / `str.strip()` semantics, which diffusers' preprocessing uses.
enum PythonString {
    /// `str.lower()`: full Unicode lowercase mapping per scalar, with the Final_Sigma rule for 'Σ'.
    static func lower(_ s: String) -> String {
        let scalars = Array(s.unicodeScalars)
        var out = String.UnicodeScalarView()
        for (i, c) in scalars.enumerated() {
            if c == "\u{03A3}" {
                out.append(isFinalSigma(scalars, i) ? "\u{03C2}" : "\u{03C3}")
                continue
            }
            out.append(contentsOf: c.properties.lowercaseMapping.unicodeScalars)
        }
        return String(out)
    }

    /// Final_Sigma: preceded by a cased letter (skipping case-ignorables) and not followed by one.
    private static func isFinalSigma(_ s: [Unicode.Scalar], _ i: Int) -> Bool {
        var j = i - 1
        while j >= 0 && s[j].properties.isCaseIgnorable { j -= 1 }
        guard j >= 0 && s[j].properties.isCased else { return false }
        var k = i + 1
        while k < s.count && s[k].properties.isCaseIgnorable { k += 1 }
        return !(k < s.count && s[k].properties.isCased)
    }

    /// Characters Python's `str.isspace()` accepts (bidi class WS/B/S or category Zs).
    static func isSpace(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default: return false
        }
    }

    /// `str.strip()` with no argument.
    static func strip(_ s: String) -> String {
        let scalars = Array(s.unicodeScalars)
        var a = 0, b = scalars.count
        while a < b && isSpace(scalars[a]) { a += 1 }
        while b > a && isSpace(scalars[b - 1]) { b -= 1 }
        var out = String.UnicodeScalarView()
        out.append(contentsOf: scalars[a..<b])
        return String(out)
    }
}
