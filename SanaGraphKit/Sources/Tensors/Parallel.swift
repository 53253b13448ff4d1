import Dispatch
import Synchronization

/// Kernel-level parallelism: a few coarse chunks per core through `concurrentPerform`
/// (a child Task costs ~2 µs, so never one task per row or head).
public enum Parallel {
    /// Worker count: `Kernels.threads` (`--threads`, `SANAGRAPH_THREADS`, else every CPU the process may use).
    public static let workerCount: Int = Kernels.threads

    /// Runs `body` over `0..<count` split into contiguous ranges, in parallel when the work is large enough.
    /// - Parameter minChunk: smallest range worth handing to a thread (tune to ~10-50 µs of work).
    @inlinable
    public static func forEachRange(_ count: Int, minChunk: Int = 1, _ body: @Sendable (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let chunks = Swift.min(workerCount * 4, Swift.max(1, count / Swift.max(1, minChunk)))
        if chunks <= 1 || workerCount == 1 {
            body(0..<count)
            return
        }
        let base = count / chunks
        let extra = count % chunks
        // `workerCount` iterations, each taking the next chunk until none is left: concurrentPerform would
        // otherwise run up to one thread per CPU, more than `--threads` allows.
        let workers = Swift.min(workerCount, chunks)
        let next = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while true {
                let c = next.wrappingAdd(1, ordering: .relaxed).oldValue
                guard c < chunks else { return }
                let start = c * base + Swift.min(c, extra)
                body(start..<(start + base + (c < extra ? 1 : 0)))
            }
        }
    }
}

/// Wraps a pointer so disjoint writes from parallel chunks compile under strict concurrency.
public struct SendablePointer<T>: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<T>
    @inlinable public init(_ pointer: UnsafeMutablePointer<T>) { self.pointer = pointer }
}
