import Dispatch
import Foundation

/// Kernel-level parallelism: a few coarse chunks per core through `concurrentPerform`
/// (a child Task costs ~2 µs, so never one task per row or head).
public enum Parallel {
    /// Worker count: `SANAGRAPH_THREADS` if set, else the active processor count.
    public static let workerCount: Int = {
        if let s = ProcessInfo.processInfo.environment["SANAGRAPH_THREADS"], let n = Int(s), n > 0 { return n }
        return Swift.max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()

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
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let start = c * base + Swift.min(c, extra)
            let end = start + base + (c < extra ? 1 : 0)
            body(start..<end)
        }
    }
}

/// Wraps a pointer so disjoint writes from parallel chunks compile under strict concurrency.
public struct SendablePointer<T>: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<T>
    @inlinable public init(_ pointer: UnsafeMutablePointer<T>) { self.pointer = pointer }
}
