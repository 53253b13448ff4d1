import SanaGraphKit

/// What can go wrong in a batch before or around its items (an item's own failure is a `NodeRunError`, recorded
/// in the manifest). Everything but an unwritable manifest is invalid input: exit 2, nothing runs.
public enum BatchError: CategorizedError {
    /// A `--sweep` argument that can't be read (`reason` says why and what is expected).
    case sweepSyntax(argument: String, reason: String)
    /// A sweep axis or sweep file without any value.
    case emptySweep(source: String)
    /// A swept name the graph does not declare.
    case unknownParam(source: String, name: String, known: [String])
    /// The same param given twice (two `--sweep`s, a `--sweep` and a sweep file column, or `--sweep` and `--set`).
    case paramTwice(name: String, first: String, second: String)
    /// `--zip` over lists of different lengths.
    case zipLengths([String])
    /// A sweep larger than the limit (a typo such as `seed=0..99999999` should not fill memory).
    case tooManyItems(count: Int, limit: Int)
    /// A sweep file that can't be read or has a bad line (`line` is 1-based).
    case sweepFile(path: String, line: Int?, reason: String)
    /// A malformed `--shard` (an index outside 0..<n, a zero count, ...).
    case shard(argument: String, reason: String)
    /// `--shard auto` without the scheduler's variables (the reason names the missing one).
    case shardEnvironment(String)
    /// Items whose graph does not validate with their params (one line per distinct problem).
    case invalidItems([String])
    /// Items that would write the same file (one line per file).
    case outputCollision([String])
    /// The manifest can't be opened or appended to.
    case manifestUnwritable(path: String, reason: String)

    public var category: ErrorCategory {
        if case .manifestUnwritable = self { return .io }
        return .invalidGraph
    }

    public var description: String {
        switch self {
        case .sweepSyntax(let argument, let reason):
            return "--sweep '\(argument)': \(reason)"
        case .emptySweep(let source):
            return "\(source): no values to sweep over"
        case .unknownParam(let source, let name, let known):
            return "\(source): the graph has no param '\(name)'"
                + Suggestions.didYouMeanOrList(name, in: known, noun: "its params")
        case .paramTwice(let name, let first, let second):
            return "param '\(name)' is given twice, by \(first) and by \(second); give it once"
        case .zipLengths(let axes):
            return "--zip needs lists of the same length, got " + axes.joined(separator: ", ")
        case .tooManyItems(let count, let limit):
            return "the sweep has \(count) items, more than the limit of \(limit); split it into several sweeps"
        case .sweepFile(let path, let line, let reason):
            return "\(path)\(line.map { ":\($0)" } ?? ""): \(reason)"
        case .shard(let argument, let reason):
            return "--shard '\(argument)': \(reason)"
        case .shardEnvironment(let reason):
            return "--shard auto: \(reason)"
        case .invalidItems(let problems):
            return "some sweep items are invalid (nothing ran):\n" + problems.map { "  " + $0 }.joined(separator: "\n")
        case .outputCollision(let lines):
            return "sweep items would write the same file (nothing ran); put the swept params in the output path, "
                + "e.g. --set output='out/{seed}_{params.guidance}.png':\n"
                + lines.map { "  " + $0 }.joined(separator: "\n")
        case .manifestUnwritable(let path, let reason):
            return "cannot write the manifest '\(path)': \(reason)"
        }
    }
}
