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
