import Foundation
import Synchronization

/// A cancellation flag shared by a run and its signal handlers.
public final class CancellationToken: Sendable {
    private let flag = Atomic<Bool>(false)

    public init() {}

    public func cancel() { flag.store(true, ordering: .sequentiallyConsistent) }

    public var isCancelled: Bool { flag.load(ordering: .sequentiallyConsistent) }

    /// The token of the run the current code works for: the executor sets it around every node's `run` and
    /// `fingerprint`, so code without a `RunContext` (a model's forward pass, a file hash) can stop early.
    @TaskLocal public static var current: CancellationToken?

    /// Throws `NodeError.cancelled` when the current run was cancelled (no-op outside a run). Cheap: call it
    /// between layers and in long loops, on the thread that runs the node.
    public static func checkCurrent() throws {
        if current?.isCancelled == true { throw NodeError.cancelled }
    }
}

/// Facts about the whole run that output nodes record as provenance (PNG metadata, path templates).
public struct RunInfo: Sendable {
    /// The graph file as given by the user.
    public var graphFile: String
    /// The graph file's text, so an output can be re-run later.
    public var graphSource: String
    /// Graph-level params after defaults and overrides.
    public var params: [String: ParamValue]
    /// Node type name -> version, for every node in the run.
    public var nodeVersions: [String: Int]
    /// Node id -> fingerprint of the files it read (model weights).
    public var fingerprints: [String: String]
    /// SanaGraph's version string.
    public var toolVersion: String
    /// False when the user asked for no metadata (`--no-metadata`).
    public var writeMetadata: Bool
    /// Wall-clock start of the run.
    public var startedAt: Date
    /// Where preview pictures go during the run (`run --preview N`); nil = none. Not provenance.
    public var preview: PreviewSink? = nil

    public init(graphFile: String, graphSource: String, params: [String: ParamValue],
                nodeVersions: [String: Int] = [:], fingerprints: [String: String] = [:],
                toolVersion: String = SanaGraphVersion.current, writeMetadata: Bool = true, startedAt: Date = Date()) {
        self.graphFile = graphFile
        self.graphSource = graphSource
        self.params = params
        self.nodeVersions = nodeVersions
        self.fingerprints = fingerprints
        self.toolVersion = toolVersion
        self.writeMetadata = writeMetadata
        self.startedAt = startedAt
    }
}

/// The version of SanaGraph.
public enum SanaGraphVersion {
    public static let current = "0.1.0"
}

/// What a running node may use: progress, cancellation checks, a logger and facts about the run.
public final class RunContext: Sendable {
    /// The graph node id being run.
    public let nodeID: String
    public let logger: NodeLogger
    public let cancellation: CancellationToken
    /// Facts about the run (nil when a node runs outside a graph, e.g. in unit tests).
    public let run: RunInfo?
    private let onProgress: @Sendable (_ nodeID: String, _ completed: Int, _ total: Int) -> Void
    private let onNote: @Sendable (_ message: String, _ warning: Bool) -> Void

    public init(nodeID: String, logger: NodeLogger = .discarding,
                cancellation: CancellationToken = CancellationToken(), run: RunInfo? = nil,
                onProgress: @escaping @Sendable (String, Int, Int) -> Void = { _, _, _ in },
                onNote: @escaping @Sendable (String, Bool) -> Void = { _, _ in }) {
        self.nodeID = nodeID
        self.logger = logger
        self.cancellation = cancellation
        self.run = run
        self.onProgress = onProgress
        self.onNote = onNote
    }

    /// Records a `node_note` event: a fact about this run of the node (e.g. the kernels a loader chose), or with
    /// `warning` something the user should know (printed on stderr even with `--quiet`).
    public func note(_ message: String, warning: Bool = false) {
        onNote(message, warning)
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
