import Foundation
import SanaGraphKit
import Safetensors

/// A reader of HF `tokenizer.json` files (the format Gemma ships) that reproduces `GemmaTokenizerFast`'s ids.
///
/// Pipeline, as in HF tokenizers: added tokens (`<bos>`, `<start_of_turn>`, …) are cut out of the raw text first
/// (leftmost, longest first); each remaining segment is normalized (Gemma: " " → "▁"), pre-tokenized into words,
/// and every word is encoded by BPE (merges applied lowest rank first, unknown characters as `<0xNN>` byte pieces
/// or the unk token); the post-processor then adds `<bos>`.
public final class GemmaTokenizer: @unchecked Sendable {
    /// The file this tokenizer was read from (used in errors).
    public let path: String
    let vocab: [Bytes: Int]
    let idToToken: [Int: Bytes]
    /// (left id << 32 | right id) → (rank, merged id).
    let merges: [UInt64: (rank: Int, id: Int)]
    let unkId: Int?
    let fuseUnk: Bool
    let byteFallback: Bool
    let ignoreMerges: Bool
    /// `<0xNN>` ids, when all present in the vocabulary.
    let byteIds: [Int?]
    let rawAddedTokens: AddedTokenMatcher
    let normalizedAddedTokens: AddedTokenMatcher
    let specialIds: Set<Int>
    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer?
    let decoder: TokenDecoder?
    let template: [TemplatePiece]?

    private let cacheLock = NSLock()
    private var cache: [Bytes: [Int]] = [:]
    private static let cacheLimit = 20_000
    private static let cacheableWordBytes = 256

    /// Reads `tokenizer.json` at `path` (a file, or a folder holding `tokenizer.json`).
    public convenience init(contentsOf path: String) throws {
        var file = path
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            file = Paths.join(path, "tokenizer.json")
        }
        let data: [UInt8]
        switch BoundedFile.read(file, limit: GraphLimits.maxTokenizerBytes) {
        case .success(let bytes): data = bytes
        case .failure(let why): throw TokenizerFile.unreadable(path: file, reason: why.description)
        }
        try self.init(bytes: data, path: file)
    }

    /// Parses the JSON text of a `tokenizer.json` (strict JSON); `path` names it in errors.
    public convenience init(data: Data, path: String) throws {
        try self.init(bytes: [UInt8](data), path: path)
    }

    /// Parses the JSON text of a `tokenizer.json` (strict JSON); `path` names it in errors.
    public init(bytes: [UInt8], path: String) throws {
        self.path = path
        let top: JSONValue
        do { top = try JSONValue.parse(bytes, maxBytes: GraphLimits.maxTokenizerBytes) } catch {
            throw TokenizerFile.invalidJSON(path: path, reason: error.description)
        }
        guard top.members != nil else {
            throw TokenizerFile.invalidJSON(path: path, reason: "top level is not an object")
        }
        let reader = JSONFieldReader(path: path)

        // Model.
        let model = try reader.object(top["model"], "model")
        let modelType = model["type"]?.string ?? "BPE"
        guard modelType == "BPE" else { throw TokenizerFile.unsupported(path: path, component: "model", type: modelType) }
        if let dropout = model["dropout"]?.double, dropout > 0 {
            throw TokenizerFile.unsupported(path: path, component: "model", type: "BPE with dropout")
        }
        let vocabObject = try reader.object(model["vocab"], "model.vocab")
        var vocab: [Bytes: Int] = [:]
        vocab.reserveCapacity(vocabObject.members?.count ?? 0)
        var idToToken: [Int: Bytes] = [:]
        idToToken.reserveCapacity(vocabObject.members?.count ?? 0)
        for (token, value) in vocabObject.members ?? [] {
            guard let id = value.int, id >= 0 else {
                throw TokenizerFile.invalidField(path: path, field: "model.vocab", message: "has a non-integer id for \(token.debugDescription)")
            }
            vocab[Bytes(token.utf8)] = id
            idToToken[id] = Bytes(token.utf8)
        }
        guard let mergeList = model["merges"]?.array else {
            throw TokenizerFile.invalidField(path: path, field: "model.merges", message: "is missing or not a list")
        }
        var merges: [UInt64: (rank: Int, id: Int)] = [:]
        merges.reserveCapacity(mergeList.count)
        for (rank, entry) in mergeList.enumerated() {
            let pair: (String, String)
            if let text = entry.string, let space = text.utf8.firstIndex(of: 0x20) {
                // "a b" form: split at the first space.
                pair = (String(text[..<space]), String(text[text.utf8.index(after: space)...]))
            } else if let array = entry.array, array.count == 2, let a = array[0].string, let b = array[1].string {
                pair = (a, b)
            } else {
                throw TokenizerFile.invalidField(path: path, field: "model.merges",
                                                  message: "entry \(rank) is neither \"a b\" nor [a, b]")
            }
            let a = Bytes(pair.0.utf8), b = Bytes(pair.1.utf8)
            guard let left = vocab[a], let right = vocab[b], let merged = vocab[a + b] else {
                throw TokenizerFile.invalidField(path: path, field: "model.merges",
                                                  message: "entry \(rank) (\(pair.0.debugDescription), \(pair.1.debugDescription)) uses a token missing from the vocab")
            }
            let key = UInt64(left) << 32 | UInt64(right)
            if merges[key] == nil { merges[key] = (rank, merged) }
        }
        self.merges = merges
        self.fuseUnk = model["fuse_unk"]?.bool ?? false
        self.byteFallback = model["byte_fallback"]?.bool ?? false
        self.ignoreMerges = model["ignore_merges"]?.bool ?? false
        if let unk = model["unk_token"]?.string {
            guard let id = vocab[Bytes(unk.utf8)] else {
                throw TokenizerFile.invalidField(path: path, field: "model.unk_token", message: "names \(unk.debugDescription), which is not in the vocab")
            }
            unkId = id
        } else {
            unkId = nil
        }
        byteIds = (0..<256).map { vocab[Bytes(String(format: "<0x%02X>", $0).utf8)] }

        // Added tokens (may extend the id space beyond the model's vocab).
        var raw: [AddedToken] = [], normalized: [AddedToken] = [], specials = Set<Int>()
        if let list = top["added_tokens"], !list.isNull {
            guard let entries = list.array else {
                throw TokenizerFile.invalidField(path: path, field: "added_tokens", message: "is not a list")
            }
            for (index, item) in entries.enumerated() {
                let entry = item
                guard entry.members != nil, let id = entry["id"]?.int, id >= 0,
                      let content = entry["content"]?.string, !content.isEmpty else {
                    throw TokenizerFile.invalidField(path: path, field: "added_tokens",
                                                      message: "entry \(index) needs a non-negative 'id' and a non-empty 'content'")
                }
                let token = AddedToken(content: Bytes(content.utf8), id: id,
                                       lstrip: entry["lstrip"]?.bool ?? false,
                                       rstrip: entry["rstrip"]?.bool ?? false)
                let special = entry["special"]?.bool ?? false
                if special { specials.insert(id) }
                // As tokenizers: `normalized: false` tokens (the default for special ones) match the raw text.
                if !(entry["normalized"]?.bool ?? !special) {
                    raw.append(token)
                } else {
                    normalized.append(token)
                }
                idToToken[id] = token.content
            }
        }
        self.vocab = vocab
        self.idToToken = idToToken
        rawAddedTokens = AddedTokenMatcher(raw)
        normalizedAddedTokens = AddedTokenMatcher(normalized)
        specialIds = specials

        normalizer = try Self.parseNormalizer(top["normalizer"], field: "normalizer", reader)
        preTokenizer = try Self.parsePreTokenizer(top["pre_tokenizer"], field: "pre_tokenizer", reader)
        decoder = try Self.parseDecoder(top["decoder"], field: "decoder", reader)
        template = try Self.parsePostProcessor(top["post_processor"], field: "post_processor", reader)
    }

    // MARK: Public API

    /// Token ids of `text`, as `GemmaTokenizerFast(text, add_special_tokens:).input_ids`.
    public func encode(_ text: String, addSpecialTokens: Bool = true) throws -> [Int] {
        let bytes = Bytes(text.utf8)
        var ids: [Int] = []
        for segment in rawAddedTokens.split(bytes) {
            if let id = segment.id { ids.append(id); continue }
            let normalizedBytes = normalizer?.apply(segment.bytes) ?? segment.bytes
            for piece in normalizedAddedTokens.split(normalizedBytes) {
                if let id = piece.id { ids.append(id); continue }
                let words = preTokenizer?.apply([piece.bytes], isFirst: segment.start == 0 && piece.start == 0) ?? [piece.bytes]
                for word in words where !word.isEmpty {
                    ids.append(contentsOf: try encodeWord(word))
                }
            }
        }
        if addSpecialTokens, let template {
            var out: [Int] = []
            for item in template {
                switch item {
                case let .special(special): out.append(contentsOf: special)
                case .sequence: out.append(contentsOf: ids)
                }
            }
            return out
        }
        return ids
    }

    /// Text of `ids`, as `GemmaTokenizerFast.decode(ids, skip_special_tokens:, clean_up_tokenization_spaces=False)`.
    /// Unknown ids are skipped.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        var tokens: [Bytes] = []
        tokens.reserveCapacity(ids.count)
        for id in ids {
            if skipSpecialTokens && specialIds.contains(id) { continue }
            if let token = idToToken[id] { tokens.append(token) }
        }
        let pieces = decoder?.apply(tokens) ?? tokens
        return String(decoding: pieces.flatMap { $0 }, as: UTF8.self)
    }

    /// The id of a token string (vocabulary or added token), if any.
    public func tokenId(_ token: String) -> Int? {
        let bytes = Bytes(token.utf8)
        return vocab[bytes] ?? rawAddedTokens.tokens.first { $0.content == bytes }?.id
            ?? normalizedAddedTokens.tokens.first { $0.content == bytes }?.id
    }

    /// The token string of an id, if any.
    public func token(_ id: Int) -> String? {
        idToToken[id].map { String(decoding: $0, as: UTF8.self) }
    }

    /// One more than the largest id (model vocabulary and added tokens).
    public var vocabularySize: Int { (idToToken.keys.max() ?? -1) + 1 }

    /// `<bos>`, `<eos>`, `<pad>` ids when the file has them.
    public var bosTokenId: Int? { tokenId("<bos>") }
    public var eosTokenId: Int? { tokenId("<eos>") }
    public var padTokenId: Int? { tokenId("<pad>") }

    // MARK: BPE

    /// BPE over one word: characters (Unicode scalars) → pieces, then merges by rank.
    func encodeWord(_ word: Bytes) throws -> [Int] {
        if ignoreMerges, let id = vocab[word] { return [id] }
        let cacheable = word.count <= Self.cacheableWordBytes
        if cacheable {
            cacheLock.lock()
            let hit = cache[word]
            cacheLock.unlock()
            if let hit { return hit }
        }
        var symbols: [Int] = []
        symbols.reserveCapacity(word.count)
        var previousWasUnk = false
        var i = 0
        while i < word.count {
            let length = utf8Length(word[i])
            let end = min(i + length, word.count)
            let character = Bytes(word[i..<end])
            i = end
            if let id = vocab[character] {
                symbols.append(id); previousWasUnk = false; continue
            }
            if byteFallback {
                let ids = character.map { byteIds[Int($0)] }
                if ids.allSatisfy({ $0 != nil }) {
                    symbols.append(contentsOf: ids.map { $0! }); previousWasUnk = false; continue
                }
            }
            guard let unkId else { throw TokenizerFile.noUnknownToken(path: path) }
            if !(fuseUnk && previousWasUnk) { symbols.append(unkId) }
            previousWasUnk = true
        }
        let result = merge(symbols)
        if cacheable {
            cacheLock.lock()
            if cache.count >= Self.cacheLimit { cache.removeAll(keepingCapacity: true) }
            cache[word] = result
            cacheLock.unlock()
        }
        return result
    }

    /// Applies merges lowest rank first (leftmost among equal ranks) with a heap over a linked list of symbols,
    /// so a long word (Gemma doesn't split on spaces) stays O(n log n).
    func merge(_ input: [Int]) -> [Int] {
        let n = input.count
        guard n > 1 else { return input }
        var ids = input
        var next = Array(1...n); next[n - 1] = -1
        var previous = Array(-1..<(n - 1))
        var alive = [Bool](repeating: true, count: n)
        var heap = MinHeap()
        func push(_ position: Int) {
            let right = next[position]
            guard right >= 0, let merge = merges[UInt64(ids[position]) << 32 | UInt64(ids[right])] else { return }
            heap.push(UInt64(merge.rank) << 32 | UInt64(position))
        }
        for position in 0..<(n - 1) { push(position) }
        while let top = heap.pop() {
            let rank = Int(top >> 32), position = Int(top & 0xFFFF_FFFF)
            guard alive[position] else { continue }
            let right = next[position]
            guard right >= 0, let merge = merges[UInt64(ids[position]) << 32 | UInt64(ids[right])],
                  merge.rank == rank else { continue }
            ids[position] = merge.id
            alive[right] = false
            next[position] = next[right]
            if next[right] >= 0 { previous[next[right]] = position }
            if previous[position] >= 0 { push(previous[position]) }
            push(position)
        }
        var out: [Int] = []
        var position = 0
        while position >= 0 { out.append(ids[position]); position = next[position] }
        return out
    }
}

/// Bytes in the UTF-8 sequence that starts with `lead` (1 for stray continuation bytes).
@inline(__always) func utf8Length(_ lead: UInt8) -> Int {
    switch lead {
    case 0xF0...: return 4
    case 0xE0...: return 3
    case 0xC0...: return 2
    default: return 1
    }
}

/// A binary min-heap of packed (rank << 32 | position) keys.
struct MinHeap {
    private var items: [UInt64] = []

    mutating func push(_ value: UInt64) {
        items.append(value)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child] < items[parent] else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> UInt64? {
        guard let last = items.popLast() else { return nil }
        guard !items.isEmpty else { return last }
        let top = items[0]
        items[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < items.count && items[left] < items[smallest] { smallest = left }
            if right < items.count && items[right] < items[smallest] { smallest = right }
            if smallest == parent { break }
            items.swapAt(parent, smallest)
            parent = smallest
        }
        return top
    }
}

/// An entry of `added_tokens`.
struct AddedToken: Sendable {
    let content: Bytes
    let id: Int
    let lstrip: Bool
    let rstrip: Bool
}

/// Cuts added tokens out of a text: leftmost match wins, the longest at that position.
struct AddedTokenMatcher: Sendable {
    let tokens: [AddedToken]
    /// First byte → candidate tokens, longest first.
    private let byFirstByte: [UInt8: [AddedToken]]

    init(_ tokens: [AddedToken]) {
        self.tokens = tokens
        var table: [UInt8: [AddedToken]] = [:]
        for token in tokens { table[token.content[0], default: []].append(token) }
        byFirstByte = table.mapValues { $0.sorted { $0.content.count > $1.content.count } }
    }

    struct Segment {
        let bytes: Bytes
        /// The added token's id, or nil for plain text.
        let id: Int?
        /// Byte offset in the input.
        let start: Int
    }

    func split(_ input: Bytes) -> [Segment] {
        guard !byFirstByte.isEmpty else { return [Segment(bytes: input, id: nil, start: 0)] }
        var segments: [Segment] = []
        var textStart = 0
        var i = 0
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }
        while i < input.count {
            guard let candidates = byFirstByte[input[i]],
                  let token = candidates.first(where: { i + $0.content.count <= input.count
                                                        && input[i..<(i + $0.content.count)].elementsEqual($0.content) })
            else { i += 1; continue }
            var matchStart = i, matchEnd = i + token.content.count
            // lstrip / rstrip: the token swallows neighbouring whitespace.
            if token.lstrip { while matchStart > textStart && isSpace(input[matchStart - 1]) { matchStart -= 1 } }
            if token.rstrip { while matchEnd < input.count && isSpace(input[matchEnd]) { matchEnd += 1 } }
            if matchStart > textStart {
                segments.append(Segment(bytes: Bytes(input[textStart..<matchStart]), id: nil, start: textStart))
            }
            segments.append(Segment(bytes: token.content, id: token.id, start: matchStart))
            textStart = matchEnd
            i = matchEnd
        }
        if textStart < input.count {
            segments.append(Segment(bytes: Bytes(input[textStart...]), id: nil, start: textStart))
        }
        return segments
    }
}
