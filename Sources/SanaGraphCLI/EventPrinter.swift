import Foundation
import GraphRuntime
import Synchronization

/// Turns run events into output: JSON lines on stdout (`--json`), a redrawn progress line on a terminal, plain
/// lines when stderr is a file or pipe, or nothing (`--quiet`). Errors are printed by the command, not here.
final class EventPrinter: Sendable {
    enum Mode: Sendable { case json, terminal, plain, quiet }

    private struct State {
        var index = 0
        var total = 0
        var node = ""
        /// Last progress decile printed in plain mode (to keep logs short).
        var lastDecile = -1
        /// Whether a terminal progress line is on screen without a newline.
        var lineOpen = false
        /// Which repetition of `--repeat` this is (shown when > 1 runs).
        var repetition = 0
    }

    let mode: Mode
    private let repetitions: Int
    private let state = Mutex(State())

    init(mode: Mode, repetitions: Int = 1) {
        self.mode = mode
        self.repetitions = repetitions
    }

    static func mode(json: Bool, quiet: Bool) -> Mode {
        if json { return .json }
        if quiet { return .quiet }
        return Console.stderrIsTTY ? .terminal : .plain
    }

    /// Ends an open terminal line so an error message starts on its own line.
    func closeLine() {
        state.withLock { s in
            if s.lineOpen {
                Console.err("\n")
                s.lineOpen = false
            }
        }
    }

    func handle(_ event: RunEvent) {
        switch mode {
        case .quiet:
            if case .nodeNote(let node, _, true, let message) = event { Console.err("warning: node '\(node)': \(message)\n") }
        case .json: Console.out(event.jsonLine + "\n")
        case .terminal, .plain: state.withLock { human(event, &$0) }
        }
    }

    private func human(_ event: RunEvent, _ s: inout State) {
        let terminal = mode == .terminal
        func line(_ text: String) {
            if terminal {
                Console.err("\r\u{1B}[K" + text + "\n")
                s.lineOpen = false
            } else {
                Console.err(text + "\n")
            }
        }
        func status(_ text: String) {
            if terminal {
                Console.err("\r\u{1B}[K" + text)
                s.lineOpen = true
            } else {
                Console.err(text + "\n")
            }
        }
        let prefix = "[\(s.index)/\(s.total)]"
        switch event {
        case .runStarted(let graph, let steps, let pruned):
            s.repetition += 1
            s.total = steps
            let rep = repetitions > 1 ? " (run \(s.repetition) of \(repetitions))" : ""
            let prunedText = pruned.isEmpty ? "" : ", \(pruned.count) pruned"
            line("running \(graph)\(rep): \(steps) node\(steps == 1 ? "" : "s")\(prunedText)")
        case .nodeStarted(let node, let type, let index, let total):
            s.index = index
            s.total = total
            s.node = node
            s.lastDecile = -1
            status("[\(index)/\(total)] \(node) (\(type)) ...")
        case .nodeProgress(let node, let completed, let total):
            guard total > 0 else { return }
            let fraction = min(1, max(0, Double(completed) / Double(total)))
            if terminal {
                let width = 24
                let filled = Int(fraction * Double(width))
                let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
                status("\(prefix) \(node) [\(bar)] \(completed)/\(total)")
            } else {
                let decile = Int(fraction * 10)
                if decile != s.lastDecile {
                    s.lastDecile = decile
                    line("\(prefix) \(node): \(completed)/\(total)")
                }
            }
        case .nodeFinished(let node, _, let seconds, let cachedFrom):
            if let cachedFrom {
                line("\(prefix) \(node): cached (\(cachedFrom))")
            } else {
                line("\(prefix) \(node): done in \(formatSeconds(seconds))")
            }
        case .nodeFailed(let node, _, _, let category):
            line("\(prefix) \(node): \(category == .interrupted ? "interrupted" : "failed")")
        case .valueReleased:
            return
        case .nodeSkipped(let node, _):
            line("[-] \(node): skipped (everything that reads it comes from cache)")
        case .cacheWarning:
            return // the executor logs it on stderr already
        case .nodeNote(let node, _, let warning, let message):
            line(warning ? "warning: node '\(node)': \(message)" : "\(prefix) \(node): \(message)")
        case .runFinished(let summary):
            let skipped = summary.nodesSkipped > 0 ? ", \(summary.nodesSkipped) skipped" : ""
            let counts = "\(summary.nodesRun) ran, \(summary.nodesCached) from cache\(skipped)"
            if summary.ok {
                line("finished in \(formatSeconds(summary.seconds)) (\(counts))")
            } else {
                line("stopped after \(formatSeconds(summary.seconds)) (\(counts)), exit code \(summary.exitCode)")
            }
        }
    }
}

func formatSeconds(_ s: Double) -> String {
    s < 10 ? String(format: "%.2fs", s) : String(format: "%.1fs", s)
}
