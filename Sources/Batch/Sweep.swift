import Foundation

/// One param value of a sweep item: text, converted to the param's declared type exactly like a `--set` value.
public struct SweepValue: Sendable, Equatable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// One swept param and its values, from `--sweep NAME=SPEC`.
///
/// SPEC is `A..B` (the integers A to B, both included), `A..B:STEP`, `v1,v2,...` (a list; `\,` is a comma inside a
/// value), or `@FILE` (one value per line; empty lines are skipped). A single value is a list of one.
public struct SweepAxis: Sendable, Equatable {
    public var name: String
    public var values: [String]
    /// The argument as given, for messages (`--sweep seed=0..99`).
    public var source: String

    public init(name: String, values: [String], source: String) {
        self.name = name
        self.values = values
        self.source = source
    }

    /// Parses `NAME=SPEC`; relative `@FILE`s are read from the working directory.
    public static func parse(_ argument: String, limit: Int = Sweep.defaultLimit) throws -> SweepAxis {
        guard let eq = argument.firstIndex(of: "=") else {
            throw BatchError.sweepSyntax(argument: argument, reason: "expected NAME=VALUES such as seed=0..99, "
                                         + "guidance=3.5,4.5 or prompt=@prompts.txt")
        }
        var name = String(argument[..<eq])
        if name.hasPrefix("params.") { name.removeFirst("params.".count) }
        guard isParamName(name) else {
            throw BatchError.sweepSyntax(argument: argument, reason: name.isEmpty ? "the param name is missing"
                                         : "'\(name)' is not a param name (letters, digits and _)")
        }
        let spec = String(argument[argument.index(after: eq)...])
        let source = "--sweep \(name)"
        if spec.isEmpty { throw BatchError.emptySweep(source: source) }
        let values: [String]
        if spec.hasPrefix("@") {
            values = try Self.lines(ofFile: String(spec.dropFirst()), argument: argument)
        } else if let range = try Self.range(spec, argument: argument, limit: limit) {
            values = range
        } else {
            values = try Self.list(spec, argument: argument)
        }
        if values.isEmpty { throw BatchError.emptySweep(source: "--sweep \(argument)") }
        return SweepAxis(name: name, values: values, source: source)
    }

    /// `A..B` or `A..B:STEP` (integers); nil when `spec` has no `..` (then it is a list).
    private static func range(_ spec: String, argument: String, limit: Int) throws -> [String]? {
        guard let dots = spec.range(of: "..") else { return nil }
        let start = String(spec[..<dots.lowerBound])
        var end = String(spec[dots.upperBound...])
        var step = 1
        if let colon = end.firstIndex(of: ":") {
            let stepText = String(end[end.index(after: colon)...])
            guard let s = Int(stepText), s >= 1 else {
                throw BatchError.sweepSyntax(argument: argument, reason: "the step '\(stepText)' must be a positive integer")
            }
            step = s
            end = String(end[..<colon])
        }
        guard let a = Int(start), let b = Int(end) else {
            // Text such as "a..b" with a non-numeric end is a value, not a range, only if it can't be one.
            if start.allSatisfy({ $0.isNumber || $0 == "-" }) || end.allSatisfy({ $0.isNumber || $0 == "-" }) {
                throw BatchError.sweepSyntax(argument: argument,
                                             reason: "a range is two integers, START..END or START..END:STEP")
            }
            return nil
        }
        guard a <= b else {
            throw BatchError.sweepSyntax(argument: argument, reason: "the range \(a)..\(b) is empty (its start is after its end)")
        }
        let (span, overflow) = b.subtractingReportingOverflow(a)
        let count = overflow ? Int.max : span / step + 1
        guard count <= limit else { throw BatchError.tooManyItems(count: count, limit: limit) }
        return stride(from: a, through: b, by: step).map(String.init)
    }

    /// `v1,v2,...` with `\,` for a comma and `\\` for a backslash inside a value.
    private static func list(_ spec: String, argument: String) throws -> [String] {
        var values: [String] = []
        var current = ""
        var escaped = false
        for c in spec {
            if escaped {
                current.append(c)
                escaped = false
            } else if c == "\\" {
                escaped = true
            } else if c == "," {
                values.append(current)
                current = ""
            } else {
                current.append(c)
            }
        }
        if escaped { current.append("\\") }
        values.append(current)
        if let empty = values.firstIndex(of: "") {
            throw BatchError.sweepSyntax(argument: argument, reason: "value \(empty + 1) of the list is empty "
                                         + "(for an empty string use a sweep file: --sweep-file items.csv)")
        }
        return values
    }

    /// The non-empty lines of a text file (LF or CRLF line ends).
    private static func lines(ofFile path: String, argument: String) throws -> [String] {
        guard !path.isEmpty else {
            throw BatchError.sweepSyntax(argument: argument, reason: "'@' must be followed by a file name")
        }
        let text: String
        do {
            text = try readText(path)
        } catch let BatchError.sweepFile(_, _, reason) {
            throw BatchError.sweepSyntax(argument: argument, reason: "can't read '\(path)': \(reason)")
        }
        // "\r\n" is one Character, and a newline.
        return text.split(whereSeparator: \.isNewline).map(String.init)
    }

    static func readText(_ path: String) throws -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw BatchError.sweepFile(path: path, line: nil, reason: "no such file")
        }
        guard !isDirectory.boolValue, let data = FileManager.default.contents(atPath: path) else {
            throw BatchError.sweepFile(path: path, line: nil,
                                       reason: isDirectory.boolValue ? "is a folder, not a file" : "can't be read")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw BatchError.sweepFile(path: path, line: nil, reason: "is not UTF-8 text")
        }
        return text
    }
}

/// Letters, digits and `_`, not starting with a digit (the names graph params may have).
func isParamName(_ s: String) -> Bool {
    guard let first = s.unicodeScalars.first, first == "_" || (first.isASCII && first.properties.isAlphabetic) else {
        return false
    }
    return s.unicodeScalars.allSatisfy { $0 == "_" || ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) }
}

/// One item of a sweep: its position and the param values that make it differ from the others.
public struct SweepItem: Sendable, Equatable {
    /// 0-based position in the whole sweep (the same in every shard).
    public var index: Int
    /// In axis order.
    public var values: [SweepValue]

    public init(index: Int, values: [SweepValue]) {
        self.index = index
        self.values = values
    }

    /// The values as `--set` style overrides.
    public var overrides: [String: String] {
        var result: [String: String] = [:]
        for v in values { result[v.name] = v.value }
        return result
    }

    /// `seed=1 prompt="a cat"`, for messages (long values are shortened).
    public var label: String {
        if values.isEmpty { return "(defaults)" }
        return values.map { v in
            var text = v.value.count > 40 ? String(v.value.prefix(37)) + "..." : v.value
            if text.contains(where: { $0 == " " || $0 == "\"" || $0 == "\n" }) || text.isEmpty {
                text = "\"" + text.replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n") + "\""
            }
            return "\(v.name)=\(text)"
        }.joined(separator: " ")
    }
}

/// A sweep: rows from a sweep file and `--sweep` axes, combined as a cartesian product (earlier ones vary slowest,
/// like nested loops in the order given; the file's rows come first) or zipped (`--zip`: the i-th item takes the
/// i-th value of every axis and the i-th row).
public struct Sweep: Sendable {
    /// More items than this is refused (a typo such as `seed=0..99999999`).
    public static let defaultLimit = 1_000_000

    public var rows: SweepFile?
    public var axes: [SweepAxis]
    public var zip: Bool

    public init(rows: SweepFile? = nil, axes: [SweepAxis], zip: Bool = false) {
        self.rows = rows
        self.axes = axes
        self.zip = zip
    }

    /// Every name the sweep sets, with where it comes from (for checks against the graph).
    public var sources: [(name: String, source: String)] {
        var result: [(String, String)] = []
        if let rows { for name in rows.names { result.append((name, "\(rows.path) column '\(name)'")) } }
        for axis in axes { result.append((axis.name, axis.source)) }
        return result
    }

    /// Checks names against the graph's declared params and `--set` names: unknown or twice-given names are errors.
    public func check(declared: [String], setNames: Set<String>) throws {
        var seen: [String: String] = [:]
        for (name, source) in sources {
            if let first = seen[name] { throw BatchError.paramTwice(name: name, first: first, second: source) }
            seen[name] = source
            guard declared.contains(name) else {
                throw BatchError.unknownParam(source: source, name: name, known: declared)
            }
            if setNames.contains(name) { throw BatchError.paramTwice(name: name, first: "--set", second: source) }
        }
    }

    /// The items in order. An empty sweep (no axes, no file) is one item with no values.
    public func items(limit: Int = Sweep.defaultLimit) throws -> [SweepItem] {
        // Every group is a list of "value sets"; the file's rows are one group.
        var groups: [[[SweepValue]]] = []
        if let rows { groups.append(rows.rows) }
        for axis in axes { groups.append(axis.values.map { [SweepValue(axis.name, $0)] }) }
        if zip {
            let counts = Set(groups.map(\.count))
            if counts.count > 1 {
                var described: [String] = []
                if let rows { described.append("\(rows.path) has \(rows.rows.count) rows") }
                for axis in axes { described.append("\(axis.source) has \(axis.values.count)") }
                throw BatchError.zipLengths(described)
            }
            let n = groups.first?.count ?? 1
            return (0..<n).map { i in SweepItem(index: i, values: groups.flatMap { $0[i] }) }
        }
        var total = 1
        for g in groups {
            let (product, overflow) = total.multipliedReportingOverflow(by: g.count)
            total = overflow ? Int.max : product
            guard total <= limit else { throw BatchError.tooManyItems(count: total, limit: limit) }
        }
        var items: [SweepItem] = []
        items.reserveCapacity(total)
        // Mixed-radix counting, last group fastest.
        var digits = [Int](repeating: 0, count: groups.count)
        for index in 0..<total {
            items.append(SweepItem(index: index, values: zip2(groups, digits)))
            var g = groups.count - 1
            while g >= 0 {
                digits[g] += 1
                if digits[g] < groups[g].count { break }
                digits[g] = 0
                g -= 1
            }
        }
        return items
    }

    private func zip2(_ groups: [[[SweepValue]]], _ digits: [Int]) -> [SweepValue] {
        var values: [SweepValue] = []
        for (g, d) in digits.enumerated() { values += groups[g][d] }
        return values
    }
}
