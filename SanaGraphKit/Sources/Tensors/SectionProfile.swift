import Foundation
import Synchronization

/// Wall time per named part of a model call, split into time inside oneDNN (`Kernels.oneDNNTime`) and the rest:
/// the benchmarks' answer to "what besides the GEMMs takes the time" on machines without `perf`. Off unless a
/// benchmark starts it; a part then costs one lock and two clock reads, and one atomic load when off.
public enum SectionProfile {
    /// One part's totals.
    public struct Totals: Sendable {
        public var seconds = 0.0, oneDNNSeconds = 0.0, calls = 0
    }

    static let totals = Locked<[String: Totals]?>(nil)
    static let collecting = Atomic<Bool>(false)

    /// Starts (or restarts) collecting.
    public static func start() {
        totals.withLock { $0 = [:] }
        collecting.store(true, ordering: .releasing)
    }

    /// Stops collecting and returns the totals per part.
    public static func stop() -> [String: Totals] {
        collecting.store(false, ordering: .releasing)
        return totals.withLock { t in defer { t = nil }; return t ?? [:] }
    }

    /// With `SANAGRAPH_PROFILE` set (and not "0"): starts collecting and prints `report` of every part to stderr
    /// when the process exits. Call once, before any model runs.
    public static func startFromEnvironment() {
        guard let v = ProcessInfo.processInfo.environment["SANAGRAPH_PROFILE"], !v.isEmpty, v != "0" else { return }
        start()
        startGEMMSeconds = Kernels.oneDNNTime().seconds
        startNanoseconds = DispatchTime.now().uptimeNanoseconds
        atexit {
            let wall = Double(DispatchTime.now().uptimeNanoseconds - SectionProfile.startNanoseconds) / 1e9
            let gemm = Kernels.oneDNNTime().seconds - SectionProfile.startGEMMSeconds
            let text = SectionProfile.report(SectionProfile.stop(), wallSeconds: wall, gemmSeconds: gemm)
            FileHandle.standardError.write(Data(("== SANAGRAPH_PROFILE\n" + text).utf8))
        }
    }

    nonisolated(unsafe) static var startNanoseconds: UInt64 = 0
    nonisolated(unsafe) static var startGEMMSeconds = 0.0

    /// A Markdown table of the parts, slowest first: total ms, ms inside the GEMM kernels (oneDNN, the AMX
    /// kernel), the rest, and calls; then the process's wall and GEMM time since collecting began.
    public static func report(_ parts: [String: Totals], wallSeconds: Double, gemmSeconds: Double) -> String {
        var lines = ["| part | ms | in GEMMs | rest | calls |", "|---|---:|---:|---:|---:|"]
        for (name, t) in parts.sorted(by: { $0.value.seconds > $1.value.seconds }) {
            let ms = t.seconds * 1e3, gemm = t.oneDNNSeconds * 1e3
            lines.append("| \(name) | \(fixed(ms)) | \(fixed(gemm)) | \(fixed(ms - gemm)) | \(t.calls) |")
        }
        let inParts = parts.values.reduce(0) { $0 + $1.seconds }
        lines.append("wall \(fixed(wallSeconds * 1e3)) ms since start, \(fixed(inParts * 1e3)) ms in the parts above, "
                     + "\(fixed(gemmSeconds * 1e3)) ms in GEMMs overall")
        return lines.joined(separator: "\n") + "\n"
    }

    private static func fixed(_ v: Double) -> String { String(format: "%.1f", v) }

    /// Runs `body`, adding its time to `part` while collecting. Parts should not nest (each would count the inner).
    public static func measure<R>(_ part: String, _ body: () throws -> R) rethrows -> R {
        guard collecting.load(ordering: .acquiring) else { return try body() }
        let d0 = Kernels.oneDNNTime().seconds, t0 = DispatchTime.now().uptimeNanoseconds
        defer {
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            let onednn = Kernels.oneDNNTime().seconds - d0
            totals.withLock { t in
                t?[part, default: Totals()].seconds += seconds
                t?[part, default: Totals()].oneDNNSeconds += onednn
                t?[part, default: Totals()].calls += 1
            }
        }
        return try body()
    }
}
