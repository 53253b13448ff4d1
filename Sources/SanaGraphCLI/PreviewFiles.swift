import Foundation
import ImageIO
import SanaGraphKit
import Synchronization

/// The preview pictures of one `run --preview N` (docs/cli.md#previews): each sampling node's latest preview in
/// `<dir>/<graph>-<node>.preview.png`, replaced atomically; all of them removed when the run ends, however it
/// ends, so a preview never outlives the run or passes for its output.
final class PreviewFiles: Sendable {
    let directory: String
    let graphFile: String
    private let written = Mutex<Set<String>>([])
    private let warned = Atomic<Bool>(false)

    init(directory: String, graphFile: String) {
        self.directory = directory
        self.graphFile = graphFile
    }

    /// The sink to put on `RunInfo.preview`.
    func sink(every: Int) -> PreviewSink {
        PreviewSink(every: every) { [self] frame in write(frame) }
    }

    /// A preview that cannot be written is a warning (once), never a failed run.
    private func write(_ frame: PreviewFrame) {
        let path = PreviewPNG.path(directory: directory, graphFile: graphFile, nodeID: frame.nodeID)
        written.withLock { _ = $0.insert(path) }
        do { try PreviewPNG.write(frame, to: path) } catch {
            if !warned.exchange(true, ordering: .relaxed) { Console.err("warning: preview not written: \(error)\n") }
        }
    }

    /// Deletes every preview this run wrote.
    func removeAll() {
        for path in written.withLock({ $0 }) { unlink(path) }
    }
}
