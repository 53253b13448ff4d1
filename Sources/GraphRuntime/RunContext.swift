import Logging
import Synchronization

/// A cancellation flag shared by a run and its signal handlers.
public final class CancellationToken: Sendable {
    private let flag = Atomic<Bool>(false)

    public init() {}

    public func cancel() { flag.store(true, ordering: .sequentiallyConsistent) }

    public var isCancelled: Bool { flag.load(ordering: .sequentiallyConsistent) }
}

/// What a running node may use: progress, cancellation checks and a logger.
public final class RunContext: Sendable {
    /// The graph node id being run.
    public let nodeID: String
    public let logger: Logger
    public let cancellation: CancellationToken
    private let onProgress: @Sendable (_ nodeID: String, _ completed: Int, _ total: Int) -> Void

    public init(nodeID: String, logger: Logger = Logger(label: "sanagraph"),
                cancellation: CancellationToken = CancellationToken(),
                onProgress: @escaping @Sendable (String, Int, Int) -> Void = { _, _, _ in }) {
        self.nodeID = nodeID
        self.logger = logger
        self.cancellation = cancellation
        self.onProgress = onProgress
    }

    /// Reports progress (e.g. sampling step `completed` of `total`) and checks for cancellation.
    public func progress(_ completed: Int, of total: Int) throws {
        onProgress(nodeID, completed, total)
        try checkCancelled()
    }

    /// Throws `NodeError.cancelled` if the run was cancelled. Call between expensive steps.
    public func checkCancelled() throws {
        if cancellation.isCancelled { throw NodeError.cancelled }
    }
}
