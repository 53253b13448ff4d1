import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `--on-item-done CMD`: runs `/bin/sh -c CMD` after each item that ran, with the item's manifest line on stdin
/// and `SANAGRAPH_ITEM`, `SANAGRAPH_ITEM_STATUS` and `SANAGRAPH_ITEM_EXIT_CODE` in its environment. The batch
/// waits for it. A hook that can't start, exits non-zero or dies is a warning, never a failed item.
enum ItemHook {
    /// nil on success, else a warning message.
    static func run(_ command: String, line: String, record: ManifestRecord) -> String? {
        // stdin: an unlinked temporary file holding the line (a pipe could block on a hook that never reads).
        var template = Array((NSTemporaryDirectory() + "/sanagraph-hook-XXXXXX").utf8CString)
        let input = mkstemp(&template)
        guard input >= 0 else { return "--on-item-done: can't create its input: \(String(cString: strerror(errno)))" }
        unlink(template)
        defer { close(input) }
        let bytes = Array((line + "\n").utf8)
        guard bytes.withUnsafeBytes({ write(input, $0.baseAddress, $0.count) }) == bytes.count,
              lseek(input, 0, SEEK_SET) == 0 else {
            return "--on-item-done: can't write its input: \(String(cString: strerror(errno)))"
        }

        var environment = ProcessInfo.processInfo.environment
        environment["SANAGRAPH_ITEM"] = String(record.item)
        environment["SANAGRAPH_ITEM_STATUS"] = record.status.rawValue
        environment["SANAGRAPH_ITEM_EXIT_CODE"] = String(record.exitCode)
        let envStrings = environment.map { "\($0.key)=\($0.value)" }
        let args = ["/bin/sh", "-c", command]

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, input, 0)
        // stdout of the hook goes to our stderr: stdout may carry --json events.
        posix_spawn_file_actions_adddup2(&actions, 2, 1)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The batch ignores SIGINT/SIGTERM (it handles them on a dispatch source); the hook gets the defaults.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for sig in [SIGINT, SIGTERM, SIGPIPE] { sigaddset(&defaults, sig) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF))

        var pid = pid_t()
        let status = withCStrings(args) { argv in
            withCStrings(envStrings) { envp in posix_spawn(&pid, "/bin/sh", &actions, &attributes, argv, envp) }
        }
        guard status == 0 else { return "--on-item-done: can't start /bin/sh: \(String(cString: strerror(status)))" }
        var wstatus: Int32 = 0
        while waitpid(pid, &wstatus, 0) < 0 {
            if errno != EINTR { return "--on-item-done: waitpid: \(String(cString: strerror(errno)))" }
        }
        let low = wstatus & 0x7f
        if low == 0 {
            let code = (wstatus >> 8) & 0xff
            return code == 0 ? nil : "--on-item-done exited \(code) for item \(record.item)"
        }
        return "--on-item-done was killed by signal \(low) for item \(record.item)"
    }

    private static func withCStrings<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
        var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
        pointers.append(nil)
        defer { for p in pointers { free(p) } }
        return body(pointers)
    }
}
