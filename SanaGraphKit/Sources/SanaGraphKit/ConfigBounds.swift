/// Sanity bounds for numbers read from model config files, checked before anything is built from them, so a
/// hostile or corrupt `config.json` (`num_layers: 1000000`, `sample_size: 2^40`, `mlp_ratio: 1e308`) gives an error
/// naming the key instead of a trap, a hang or an allocation that can't succeed. The bounds are far above any
/// released model's values (docs/limits.md lists them); each loader's `problems()` checks them first and stops
/// there when one fails, so later arithmetic on the values can't overflow.
public struct ConfigBounds {
    public private(set) var problems: [String] = []

    public init() {}

    public var ok: Bool { problems.isEmpty }

    /// `value` must lie in `range`.
    public mutating func check(_ key: String, _ value: Int, _ range: ClosedRange<Int>) {
        if !range.contains(value) { problems.append("\(key) \(value) is outside the supported \(range.lowerBound)...\(range.upperBound)") }
    }

    /// An optional value, when present.
    public mutating func check(_ key: String, _ value: Int?, _ range: ClosedRange<Int>) {
        if let value { check(key, value, range) }
    }

    /// `value` must be finite and lie in `range`.
    public mutating func check(_ key: String, _ value: Double, _ range: ClosedRange<Double>) {
        if !value.isFinite || !range.contains(value) {
            problems.append("\(key) \(value) is outside the supported \(range.lowerBound)...\(range.upperBound)")
        }
    }

    public mutating func check(_ key: String, _ value: Double?, _ range: ClosedRange<Double>) {
        if let value { check(key, value, range) }
    }

    /// A list of at most `maxCount` values, each in `range`.
    public mutating func check(_ key: String, _ values: [Int], count maxCount: Int, each range: ClosedRange<Int>) {
        if values.count > maxCount {
            problems.append("\(key) has \(values.count) entries, more than the supported \(maxCount)")
            return
        }
        for (i, v) in values.enumerated() where !range.contains(v) {
            problems.append("\(key)[\(i)] \(v) is outside the supported \(range.lowerBound)...\(range.upperBound)")
            return
        }
    }

    /// A product of dimensions (e.g. heads × head dim) that must stay within `limit`.
    public mutating func checkProduct(_ what: String, _ factors: [Int], atMost limit: Int) {
        var product = 1
        for f in factors {
            let (p, overflow) = product.multipliedReportingOverflow(by: max(f, 0))
            if overflow || p > limit {
                problems.append("\(what) is above the supported \(limit)")
                return
            }
            product = p
        }
    }
}
