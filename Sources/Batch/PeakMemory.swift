import Foundation

/// The process's peak resident memory (Linux `VmHWM`), which can be reset so that it measures one item.
enum PeakMemory {
    /// Resets the peak to the current resident size (writes 5 to /proc/self/clear_refs); false where that is not
    /// possible (then `current` is the peak since the process started).
    @discardableResult
    static func reset() -> Bool {
        guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? handle.close() }
        do {
            try handle.write(contentsOf: Data("5".utf8))
            return true
        } catch {
            return false
        }
    }

    /// Peak resident bytes since the last reset, or nil when /proc is not there.
    static func current() -> Int? {
        guard let data = FileManager.default.contents(atPath: "/proc/self/status") else { return nil }
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let digits = line.dropFirst("VmHWM:".count).filter(\.isNumber)
            return Int(digits).map { $0 * 1024 }
        }
        return nil
    }
}
