/// "Did you mean" suggestions for misspelt names (node types, params, inputs, node ids).
public enum Suggestions {
    /// Optimal-string-alignment distance (Levenshtein plus adjacent transpositions), counted in Characters.
    public static func distance(_ a: String, _ b: String) -> Int {
        let s = Array(a), t = Array(b)
        if s.isEmpty { return t.count }
        if t.isEmpty { return s.count }
        // Three rolling rows: i-2, i-1, i.
        var prev2 = [Int](repeating: 0, count: t.count + 1)
        var prev = Array(0...t.count)
        var cur = [Int](repeating: 0, count: t.count + 1)
        for i in 1...s.count {
            cur[0] = i
            for j in 1...t.count {
                let cost = s[i - 1] == t[j - 1] ? 0 : 1
                var d = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
                if i > 1, j > 1, s[i - 1] == t[j - 2], s[i - 2] == t[j - 1] { d = min(d, prev2[j - 2] + 1) }
                cur[j] = d
            }
            (prev2, prev, cur) = (prev, cur, prev2)
        }
        return prev[t.count]
    }

    /// The candidate closest to `word`, or nil when none is close enough to be a likely misspelling.
    /// Close means: equal ignoring case, equal to the last dotted component of a candidate (`add` ->
    /// `test.add`), or within an edit distance that grows with the word's length (1 up to 3 letters,
    /// 2 up to 6, else 3) and is smaller than the word itself.
    public static func closest(to word: String, in candidates: [String]) -> String? {
        guard !word.isEmpty else { return nil }
        let lower = word.lowercased()
        let sorted = candidates.sorted()
        if let same = sorted.first(where: { $0.lowercased() == lower && $0 != word }) { return same }
        let limit = word.count <= 3 ? 1 : (word.count <= 6 ? 2 : 3)
        var best: (name: String, distance: Int)?
        for candidate in sorted where candidate != word {
            let d = distance(lower, candidate.lowercased())
            if d <= limit, d < word.count, d < (best?.distance ?? .max) { best = (candidate, d) }
        }
        if let best { return best.name }
        // A dotted type name given without its family prefix.
        let suffixMatches = sorted.filter { $0.split(separator: ".").last.map(String.init)?.lowercased() == lower }
        return suffixMatches.count == 1 ? suffixMatches[0] : nil
    }

    /// `" (did you mean 'x'?)"` when a close candidate exists, else `""`.
    public static func didYouMean(_ word: String, in candidates: [String]) -> String {
        closest(to: word, in: candidates).map { " (did you mean '\($0)'?)" } ?? ""
    }

    /// `" (did you mean 'x'?)"` when a close candidate exists; otherwise lists the candidates
    /// (`" (known: a, b, c)"`, or `none` when there are none) so the user sees the choices.
    public static func didYouMeanOrList(_ word: String, in candidates: [String], noun: String = "known") -> String {
        if let c = closest(to: word, in: candidates) { return " (did you mean '\(c)'?)" }
        if candidates.isEmpty { return " (there are none)" }
        let list = candidates.count > 12 ? candidates.sorted().prefix(12).joined(separator: ", ") + ", …"
            : candidates.sorted().joined(separator: ", ")
        return " (\(noun): \(list))"
    }
}
