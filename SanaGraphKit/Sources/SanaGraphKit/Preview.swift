import Synchronization
import Tensors

/// One preview picture a node offers while it runs (a sampler's current latent seen through a cheap projection).
public struct PreviewFrame: Sendable {
    /// The node that made it.
    public let nodeID: String
    /// Steps done and the node's total.
    public let step: Int
    public let total: Int
    /// [1, 3, h, w] in [0, 1].
    public let image: Tensor

    public init(nodeID: String, step: Int, total: Int, image: Tensor) {
        self.nodeID = nodeID
        self.step = step
        self.total = total
        self.image = image
    }
}

/// Where a run's previews go (`sanagraph run --preview N`): every `every` steps a node that can preview hands a
/// `PreviewFrame` to `write`. Set it on `RunInfo.preview`; nil = no previews, and nodes skip the work.
public final class PreviewSink: Sendable {
    public let every: Int
    private let write: @Sendable (PreviewFrame) -> Void
    private let noted = Mutex<Set<String>>([])

    public init(every: Int, write: @escaping @Sendable (PreviewFrame) -> Void) {
        precondition(every >= 1)
        self.every = every
        self.write = write
    }

    public func callAsFunction(_ frame: PreviewFrame) { write(frame) }

    /// True the first time for each node id: for notes said once per run ("this sampler cannot preview").
    public func firstNotice(for nodeID: String) -> Bool { noted.withLock { $0.insert(nodeID).inserted } }
}

extension RunContext {
    /// Whether this run takes previews at all (`run --preview N`).
    public var wantsPreviews: Bool { run?.preview != nil }

    /// Whether this run wants a preview after step `step` (every N steps of the run's `--preview N`).
    public func wantsPreview(step: Int) -> Bool {
        guard let sink = run?.preview else { return false }
        return step % sink.every == 0
    }

    /// Hands a preview picture [1, 3, h, w] in [0, 1] to the run's preview sink (no-op without one).
    public func preview(_ image: Tensor, step: Int, of total: Int) {
        run?.preview?(PreviewFrame(nodeID: nodeID, step: step, total: total, image: image))
    }

    /// Notes once per node and run that previews were asked for but this node cannot make them, and why.
    public func noteNoPreview(_ why: String) {
        guard let sink = run?.preview, sink.firstNotice(for: nodeID) else { return }
        note("no --preview pictures: \(why)", warning: true)
    }
}
