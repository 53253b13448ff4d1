import Dispatch
import Foundation
import GraphRuntime

#if canImport(Glibc)
import Glibc
#endif

/// SIGINT/SIGTERM handling for `run`: the first signal cancels the run (the executor stops before the next
/// node, nodes stop at their next progress point, and the command exits 130 with no partial output files);
/// a second signal exits at once with 130.
///
/// Signals arrive on a dispatch source (not an async signal handler), so the handler may do ordinary work.
final class SignalCancellation {
    private let sources: [any DispatchSourceSignal]

    init(token: CancellationToken) {
        var sources: [any DispatchSourceSignal] = []
        for sig in [SIGINT, SIGTERM] {
            // The default action (terminate) must be off, else the process dies before the source sees it.
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                if token.isCancelled {
                    Console.err("\nsecond interrupt: exiting now\n")
                    _exit(ErrorCategory.interrupted.exitCode)
                }
                token.cancel()
                Console.err("\ninterrupt received: stopping after the current step (interrupt again to exit now)\n")
            }
            source.resume()
            sources.append(source)
        }
        self.sources = sources
    }

    /// Stops listening and restores the default actions.
    func cancel() {
        for source in sources { source.cancel() }
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }
}
