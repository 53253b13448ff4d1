#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Per-launch GPU timing, off unless attached (`CUDAContext.profiler`, `SANAGRAPH_CUDA_PROFILE=1` or a tool's
/// `--profile`). While attached, every kernel launch (`KernelFunction.launch`) and every GEMM (`Gemm.run`) is
/// bracketed by two CUDA events on the context's stream, tagged with the kernel's name, the innermost open
/// `CUDAContext.profileScope` path (e.g. "stage 0/ResBlock 1") and an estimate of the bytes it moves
/// (and FLOPs for GEMMs). Events are read back at `report()` (or every `flushThreshold` launches, which waits for
/// the stream), so queued work is never stalled per launch. Detached, a launch costs one `nil` check.
public final class CUDAProfiler: @unchecked Sendable {
    /// One measured operation's totals.
    public struct Entry: Sendable {
        public var milliseconds = 0.0
        public var calls = 0
        public var bytes = 0.0
        public var flops = 0.0

        mutating func merge(_ e: Entry) {
            milliseconds += e.milliseconds; calls += e.calls; bytes += e.bytes; flops += e.flops
        }

        fileprivate mutating func add(_ ms: Double, _ p: Pending) {
            milliseconds += ms; calls += 1; bytes += Double(p.bytes); flops += Double(p.flops)
        }
    }

    fileprivate struct Pending {
        let name: String, scope: String, bytes: Int, flops: Int
        let start: CUHandle, end: CUHandle
    }

    let driver: CUDADriver
    let stream: CUHandle
    private let lock = Lock()
    private var pending: [Pending] = []
    private var freeEvents: [CUHandle] = []
    private var scopes: [String] = []
    /// Totals by kernel name, by scope path, and by (scope, kernel).
    public private(set) var byKernel: [String: Entry] = [:]
    public private(set) var byScope: [String: Entry] = [:]
    public private(set) var byScopeKernel: [String: Entry] = [:]
    /// Launches kept unread before the profiler waits for the stream and folds them into the totals.
    public var flushThreshold = 8192

    init(driver: CUDADriver, stream: CUHandle) {
        self.driver = driver
        self.stream = stream
    }

    deinit {
        for p in pending { _ = driver.cuEventDestroy(p.start); _ = driver.cuEventDestroy(p.end) }
        for e in freeEvents { _ = driver.cuEventDestroy(e) }
    }

    /// The current scope path ("" at the top).
    public var scope: String { lock.withLock { scopes.joined(separator: "/") } }

    func push(_ name: String) { lock.withLock { scopes.append(name) } }
    func pop() { lock.withLock { _ = scopes.popLast() } }

    private func event() throws(CUDAError) -> CUHandle {
        if let e = freeEvents.popLast() { return e }
        var e: CUHandle?
        try driver.check(driver.cuEventCreate(&e, 0), "cuEventCreate")
        return e!
    }

    /// Runs `body` (which queues one operation on the stream) between two events.
    func measure(_ name: String, bytes: Int, flops: Int = 0,
                 _ body: () throws(CUDAError) -> Void) throws(CUDAError) {
        let full = lock.withLock { pending.count >= flushThreshold }
        if full { try flush() }
        let (start, end) = try lock.withLock { () throws(CUDAError) -> (CUHandle, CUHandle) in (try event(), try event()) }
        try driver.check(driver.cuEventRecord(start, stream), "cuEventRecord")
        try body()
        try driver.check(driver.cuEventRecord(end, stream), "cuEventRecord")
        lock.withLock {
            pending.append(Pending(name: name, scope: scopes.joined(separator: "/"), bytes: bytes, flops: flops,
                                   start: start, end: end))
        }
    }

    /// Waits for the stream and folds every measured launch into the totals.
    public func flush() throws(CUDAError) {
        let done: [Pending] = lock.withLock {
            let p = pending
            pending = []
            return p
        }
        guard let last = done.last else { return }
        try driver.check(driver.cuEventSynchronize(last.end), "cuEventSynchronize")
        var folded: [(Pending, Double)] = []
        for p in done {
            var ms: Float = 0
            try driver.check(driver.cuEventElapsedTime(&ms, p.start, p.end), "cuEventElapsedTime")
            folded.append((p, Double(ms)))
        }
        lock.withLock {
            for (p, ms) in folded {
                byKernel[p.name, default: Entry()].add(ms, p)
                byScope[p.scope, default: Entry()].add(ms, p)
                byScopeKernel[p.scope + " · " + p.name, default: Entry()].add(ms, p)
                freeEvents.append(p.start)
                freeEvents.append(p.end)
            }
        }
    }

    /// Forgets every total (pending launches are read first).
    public func reset() throws(CUDAError) {
        try flush()
        lock.withLock { byKernel = [:]; byScope = [:]; byScopeKernel = [:] }
    }

    /// Tables of the totals (milliseconds per `runs` runs: the totals divided by `runs`), slowest first: by kernel,
    /// by scope, and the `detail` slowest (scope, kernel) pairs. GB/s and TFLOP/s are over the measured GPU time.
    public func report(runs: Int = 1, detail: Int = 40) throws(CUDAError) -> String {
        try flush()
        let (k, s, sk) = lock.withLock { (byKernel, byScope, byScopeKernel) }
        let total = k.values.reduce(0) { $0 + $1.milliseconds }
        let n = Double(max(runs, 1))
        func table(_ title: String, _ rows: [String: Entry], limit: Int = .max) -> String {
            var lines = ["\(title) (per run, \(runs) run\(runs == 1 ? "" : "s"); measured total "
                         + String(format: "%.3f ms)", total / n),
                         "| ms | % | calls | GB | GB/s | TFLOP/s | name |", "|---:|---:|---:|---:|---:|---:|---|"]
            for (name, e) in rows.sorted(by: { $0.value.milliseconds > $1.value.milliseconds }).prefix(limit) {
                let seconds = e.milliseconds / 1000
                let tflops = e.flops > 0 ? String(format: "%.0f", e.flops / max(seconds, 1e-12) / 1e12) : ""
                lines.append(String(format: "| %.3f | %.1f | %d | %.3f | %.0f | ", e.milliseconds / n,
                                    100 * e.milliseconds / max(total, 1e-9), Int((Double(e.calls) / n).rounded()),
                                    e.bytes / n / 1e9, seconds > 0 ? e.bytes / seconds / 1e9 : 0)
                             + tflops + " | " + (name.isEmpty ? "(no scope)" : name) + " |")
            }
            return lines.joined(separator: "\n")
        }
        var top: [String: Entry] = [:]
        for (name, e) in s {
            let key = String(name.split(separator: "/", maxSplits: 1).first ?? "")
            top[key, default: Entry()].merge(e)
        }
        return [table("GPU time by kernel", k), table("GPU time by top-level scope", top), table("GPU time by scope", s),
                table("Slowest (scope · kernel)", sk, limit: detail)].joined(separator: "\n\n")
    }

    /// The totals as JSON-ready rows (`kind`: kernel, scope or scope·kernel), per `runs` runs.
    public func rows(runs: Int = 1) throws(CUDAError) -> [[String: Any]] {
        try flush()
        let (k, s, sk) = lock.withLock { (byKernel, byScope, byScopeKernel) }
        let n = Double(max(runs, 1))
        var out: [[String: Any]] = []
        for (kind, table) in [("kernel", k), ("scope", s), ("scope_kernel", sk)] {
            for (name, e) in table.sorted(by: { $0.value.milliseconds > $1.value.milliseconds }) {
                out.append(["kind": kind, "name": name, "ms": e.milliseconds / n, "calls": Double(e.calls) / n,
                            "bytes": e.bytes / n, "flops": e.flops / n])
            }
        }
        return out
    }
}

/// Host-side costs of first use, always counted (each sits on a path that is slow anyway): kernel modules
/// loaded (NVRTC or disk cache + `cuModuleLoadData`), cuBLASLt heuristic queries (one per new GEMM shape) and
/// allocations that reached the driver (`cuMemAlloc`). `snapshot()` before and after a call gives its share.
public final class SetupCounters: @unchecked Sendable {
    public struct Snapshot: Sendable {
        public var moduleLoads = 0, moduleSeconds = 0.0
        public var heuristicQueries = 0, heuristicSeconds = 0.0
        public var driverAllocations = 0, allocationSeconds = 0.0, allocatedBytes = 0

        public init() {}

        /// `self − earlier`, as a JSON-ready dictionary.
        public func since(_ earlier: Snapshot) -> [String: Any] {
            ["module_loads": moduleLoads - earlier.moduleLoads,
             "module_ms": (moduleSeconds - earlier.moduleSeconds) * 1000,
             "heuristic_queries": heuristicQueries - earlier.heuristicQueries,
             "heuristic_ms": (heuristicSeconds - earlier.heuristicSeconds) * 1000,
             "driver_allocations": driverAllocations - earlier.driverAllocations,
             "allocation_ms": (allocationSeconds - earlier.allocationSeconds) * 1000,
             "allocated_gib": Double(allocatedBytes - earlier.allocatedBytes) / 1_073_741_824]
        }

        /// `since(earlier)` as one line of text.
        public func line(since earlier: Snapshot = Snapshot()) -> String {
            since(earlier).sorted { $0.key < $1.key }.map { key, value in
                if let d = value as? Double { return key + " " + String(format: "%.2f", d) }
                return "\(key) \(value)"
            }.joined(separator: ", ")
        }
    }
    private let lock = Lock()
    private var value = Snapshot()

    public func snapshot() -> Snapshot { lock.withLock { value } }

    func add(_ update: (inout Snapshot) -> Void) { lock.withLock { update(&value) } }

    /// Seconds on a monotonic clock.
    static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }
}
