import Foundation

/// This process's part of a sweep: shard `index` (0-based) of `count`. Item k belongs to shard k mod count
/// (round robin), so every shard gets the same number of items give or take one, and items whose cost grows
/// along an axis (steps, sizes) spread evenly. The assignment depends only on the item's index, so re-running a
/// shard after a failure or on another host takes the same items.
public struct Shard: Sendable, Equatable, CustomStringConvertible {
    /// More shards than this is refused (a typo).
    public static let maximumCount = 1 << 20

    public var index: Int
    public var count: Int

    public init(index: Int, count: Int) {
        self.index = index
        self.count = count
    }

    /// The whole sweep in one process.
    public static let all = Shard(index: 0, count: 1)

    /// `i/n` with 0 <= i < n (the same numbering as JOB_COMPLETION_INDEX).
    public static func parse(_ text: String) throws -> Shard {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } }),
              let i = Int(parts[0]), let n = Int(parts[1]) else {
            throw BatchError.shard(argument: text, reason: "expected INDEX/COUNT such as 0/4 (0-based: 0/4 to 3/4), or auto")
        }
        return try checked(index: i, count: n, describe: { BatchError.shard(argument: text, reason: $0) })
    }

    private static func checked(index: Int, count: Int, describe: (String) -> BatchError) throws -> Shard {
        guard count >= 1, count <= maximumCount else {
            throw describe("the shard count must be 1 to \(maximumCount), got \(count)")
        }
        guard index >= 0, index < count else {
            throw describe("the shard index must be 0 to \(count - 1) for \(count) shard\(count == 1 ? "" : "s") "
                           + "(0-based, like JOB_COMPLETION_INDEX), got \(index)")
        }
        return Shard(index: index, count: count)
    }

    /// The shard a cluster scheduler assigned, and where it was read from:
    /// - Kubernetes Indexed Job: `JOB_COMPLETION_INDEX` (0-based) and `SANAGRAPH_SHARD_COUNT` (set it to the Job's
    ///   `completions` in the pod template: Kubernetes does not pass the count);
    /// - Slurm job array: (`SLURM_ARRAY_TASK_ID` - `SLURM_ARRAY_TASK_MIN`) / `SLURM_ARRAY_TASK_STEP` (1 when unset)
    ///   of `SLURM_ARRAY_TASK_COUNT`.
    /// `JOB_COMPLETION_INDEX` wins when both are set. A missing or malformed variable is an error naming it.
    public static func fromEnvironment(_ env: [String: String]) throws -> (shard: Shard, source: String) {
        func number(_ name: String, why: String) throws -> Int {
            guard let text = env[name], !text.isEmpty else {
                throw BatchError.shardEnvironment("\(name) is not set; \(why)")
            }
            guard let n = Int(text.trimmingCharacters(in: .whitespaces)) else {
                throw BatchError.shardEnvironment("\(name) must be an integer, got '\(text)'")
            }
            return n
        }
        if env["JOB_COMPLETION_INDEX"].map({ !$0.isEmpty }) == true {
            let index = try number("JOB_COMPLETION_INDEX", why: "")
            let count = try number("SANAGRAPH_SHARD_COUNT", why: "JOB_COMPLETION_INDEX is set (a Kubernetes Indexed "
                                   + "Job), which does not say how many shards there are: set SANAGRAPH_SHARD_COUNT "
                                   + "to the Job's completions in the pod template (docs/cluster.md)")
            let shard = try checked(index: index, count: count) {
                BatchError.shardEnvironment("JOB_COMPLETION_INDEX=\(index), SANAGRAPH_SHARD_COUNT=\(count): \($0)")
            }
            return (shard, "JOB_COMPLETION_INDEX=\(index), SANAGRAPH_SHARD_COUNT=\(count)")
        }
        if env["SLURM_ARRAY_TASK_ID"].map({ !$0.isEmpty }) == true {
            let why = "SLURM_ARRAY_TASK_ID is set but this variable is not (is this a job array? sbatch --array=0-3)"
            let id = try number("SLURM_ARRAY_TASK_ID", why: "")
            let count = try number("SLURM_ARRAY_TASK_COUNT", why: why)
            let min = try number("SLURM_ARRAY_TASK_MIN", why: why)
            let step = env["SLURM_ARRAY_TASK_STEP"].map { _ in try? number("SLURM_ARRAY_TASK_STEP", why: "") } ?? 1
            guard let step, step >= 1 else {
                throw BatchError.shardEnvironment("SLURM_ARRAY_TASK_STEP must be a positive integer, got "
                                                  + "'\(env["SLURM_ARRAY_TASK_STEP"] ?? "")'")
            }
            let source = "SLURM_ARRAY_TASK_ID=\(id), SLURM_ARRAY_TASK_MIN=\(min), SLURM_ARRAY_TASK_COUNT=\(count)"
                + (step == 1 ? "" : ", SLURM_ARRAY_TASK_STEP=\(step)")
            guard id >= min, (id - min) % step == 0 else {
                throw BatchError.shardEnvironment("\(source): the task id is not START+k*STEP; use a regular "
                                                  + "--array range such as 0-15 or 0-15:4")
            }
            let shard = try checked(index: (id - min) / step, count: count) {
                BatchError.shardEnvironment("\(source): \($0); use a regular --array range such as 0-15")
            }
            return (shard, source)
        }
        throw BatchError.shardEnvironment("neither JOB_COMPLETION_INDEX (Kubernetes Indexed Job) nor "
                                          + "SLURM_ARRAY_TASK_ID (Slurm job array) is set; give --shard INDEX/COUNT instead")
    }

    /// Whether item `item` (0-based index in the whole sweep) is this shard's.
    public func owns(_ item: Int) -> Bool { item % count == index }

    public var description: String { "\(index)/\(count)" }

    /// `template` with `{shard}` replaced by the index and `{shards}` by the count (per-shard manifest and
    /// metrics files: `out/manifest-{shard}.jsonl`).
    public func render(_ template: String) -> String {
        template.replacingOccurrences(of: "{shard}", with: String(index))
            .replacingOccurrences(of: "{shards}", with: String(count))
    }
}
