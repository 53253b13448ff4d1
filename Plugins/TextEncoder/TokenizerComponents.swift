/// The pieces of a HF `tokenizer.json` pipeline, all working on UTF-8 bytes. Bytes (not `String`) are compared
/// because Swift's `String ==` uses canonical equivalence ("é" == "e\u{301}"), which tokenizers does not.
typealias Bytes = [UInt8]

/// The `normalizer` entry.
indirect enum Normalizer: Sendable {
    case replace(pattern: Bytes, content: Bytes)
    case prepend(Bytes)
    case sequence([Normalizer])

    func apply(_ input: Bytes) -> Bytes {
        switch self {
        case let .replace(pattern, content):
            return replaceAll(input, pattern, content)
        case let .prepend(prefix):
            // tokenizers prepends only to non-empty strings.
            return input.isEmpty ? input : prefix + input
        case let .sequence(steps):
            return steps.reduce(input) { $1.apply($0) }
        }
    }
}

/// How `Split` keeps the delimiters (tokenizers' `SplitDelimiterBehavior`).
enum SplitBehavior: String, Sendable {
    case removed = "Removed", isolated = "Isolated", mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext", contiguous = "Contiguous"
}

/// `Metaspace`'s prepend scheme.
enum PrependScheme: String, Sendable { case always, first, never }

/// The `pre_tokenizer` entry: splits a normalized segment into words that BPE encodes independently.
indirect enum PreTokenizer: Sendable {
    case split(pattern: Bytes, behavior: SplitBehavior, invert: Bool)
    case metaspace(replacement: Bytes, prependScheme: PrependScheme, split: Bool)
    case sequence([PreTokenizer])

    /// `isFirst`: the segment starts at the beginning of the input text (for `prepend_scheme: first`).
    func apply(_ words: [Bytes], isFirst: Bool) -> [Bytes] {
        switch self {
        case let .split(pattern, behavior, invert):
            return words.flatMap { splitWord($0, pattern: pattern, behavior: behavior, invert: invert) }
        case let .metaspace(replacement, scheme, split):
            return words.enumerated().flatMap { index, word -> [Bytes] in
                var w = replaceAll(word, [0x20], replacement)
                let prepend = scheme == .always || (scheme == .first && isFirst && index == 0)
                if prepend && !w.starts(with: replacement) { w = replacement + w }
                return split ? splitWord(w, pattern: replacement, behavior: .mergedWithNext, invert: false) : [w]
            }
        case let .sequence(steps):
            return steps.reduce(words) { $1.apply($0, isFirst: isFirst) }
        }
    }
}

/// One element of a `TemplateProcessing` template.
enum TemplatePiece: Sendable {
    case special([Int])
    case sequence
}

/// The `decoder` entry: turns the token strings of `decode` back into text.
indirect enum TokenDecoder: Sendable {
    case replace(pattern: Bytes, content: Bytes)
    case byteFallback
    case fuse
    case strip(content: Bytes, start: Int, stop: Int)
    case metaspace(replacement: Bytes, prepend: Bool)
    case sequence([TokenDecoder])

    func apply(_ tokens: [Bytes]) -> [Bytes] {
        switch self {
        case let .replace(pattern, content):
            return tokens.map { replaceAll($0, pattern, content) }
        case .byteFallback:
            var out: [Bytes] = []
            var pending: Bytes = []
            func flush() {
                guard !pending.isEmpty else { return }
                if String(validating: pending, as: UTF8.self) != nil {
                    out.append(pending)
                } else {
                    // Invalid UTF-8: one U+FFFD per byte token, as tokenizers does.
                    out.append(contentsOf: Array(repeating: Array("\u{FFFD}".utf8), count: pending.count))
                }
                pending = []
            }
            for token in tokens {
                if let byte = parseByteToken(token) { pending.append(byte); continue }
                flush()
                out.append(token)
            }
            flush()
            return out
        case .fuse:
            return [tokens.flatMap { $0 }]
        case let .strip(content, start, stop):
            return tokens.map { token in
                var t = token[...]
                var n = 0
                while n < start, !content.isEmpty, t.starts(with: content) { t = t.dropFirst(content.count); n += 1 }
                n = 0
                while n < stop, !content.isEmpty, t.count >= content.count, t.suffix(content.count).elementsEqual(content) {
                    t = t.dropLast(content.count); n += 1
                }
                return Bytes(t)
            }
        case let .metaspace(replacement, prepend):
            return tokens.enumerated().map { index, token in
                var t = replaceAll(token, replacement, [0x20])
                if index == 0 && prepend && t.first == 0x20 { t.removeFirst() }
                return t
            }
        case let .sequence(steps):
            return steps.reduce(tokens) { $1.apply($0) }
        }
    }
}

/// `<0xNN>` → NN.
func parseByteToken(_ token: Bytes) -> UInt8? {
    guard token.count == 6, token[0] == 0x3C, token[1] == 0x30, token[2] == 0x78, token[5] == 0x3E else { return nil }
    func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x41...0x46: return c - 0x41 + 10
        case 0x61...0x66: return c - 0x61 + 10
        default: return nil
        }
    }
    guard let hi = hex(token[3]), let lo = hex(token[4]) else { return nil }
    return hi << 4 | lo
}

/// Byte offset of the first occurrence of `pattern` in `input` at or after `from`.
func find(_ pattern: Bytes, in input: Bytes, from: Int) -> Int? {
    guard !pattern.isEmpty, input.count >= pattern.count else { return nil }
    let first = pattern[0]
    var i = from
    while i + pattern.count <= input.count {
        if input[i] == first {
            var j = 1
            while j < pattern.count && input[i + j] == pattern[j] { j += 1 }
            if j == pattern.count { return i }
        }
        i += 1
    }
    return nil
}

/// Replaces every non-overlapping occurrence, left to right.
func replaceAll(_ input: Bytes, _ pattern: Bytes, _ content: Bytes) -> Bytes {
    guard var hit = find(pattern, in: input, from: 0) else { return input }
    var out = Bytes()
    out.reserveCapacity(input.count + 8)
    var start = 0
    while true {
        out.append(contentsOf: input[start..<hit])
        out.append(contentsOf: content)
        start = hit + pattern.count
        guard let next = find(pattern, in: input, from: start) else { break }
        hit = next
    }
    out.append(contentsOf: input[start...])
    return out
}

/// tokenizers' `Split` with a string pattern and the given delimiter behavior; empty pieces are dropped.
func splitWord(_ word: Bytes, pattern: Bytes, behavior: SplitBehavior, invert: Bool) -> [Bytes] {
    // (range, isMatch) covering the whole word.
    var parts: [(Range<Int>, Bool)] = []
    var start = 0
    while let hit = find(pattern, in: word, from: start) {
        if hit > start { parts.append((start..<hit, false)) }
        parts.append((hit..<(hit + pattern.count), true))
        start = hit + pattern.count
    }
    if start < word.count { parts.append((start..<word.count, false)) }
    if invert { parts = parts.map { ($0.0, !$0.1) } }

    var pieces: [Range<Int>] = []
    switch behavior {
    case .removed:
        pieces = parts.filter { !$0.1 }.map { $0.0 }
    case .isolated:
        pieces = parts.map { $0.0 }
    case .contiguous:
        var previousMatch = false
        for (range, isMatch) in parts {
            if isMatch && previousMatch, let last = pieces.popLast() {
                pieces.append(last.lowerBound..<range.upperBound)
            } else {
                pieces.append(range)
            }
            previousMatch = isMatch
        }
    case .mergedWithPrevious:
        var previousMatch = false
        for (range, isMatch) in parts {
            if isMatch && !previousMatch, let last = pieces.popLast() {
                pieces.append(last.lowerBound..<range.upperBound)
            } else {
                pieces.append(range)
            }
            previousMatch = isMatch
        }
    case .mergedWithNext:
        var previousMatch = false
        for (range, isMatch) in parts.reversed() {
            if isMatch && !previousMatch, let last = pieces.popLast() {
                pieces.append(range.lowerBound..<last.upperBound)
            } else {
                pieces.append(range)
            }
            previousMatch = isMatch
        }
        pieces.reverse()
    }
    return pieces.filter { !$0.isEmpty }.map { Bytes(word[$0]) }
}
