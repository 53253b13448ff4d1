import Foundation

/// The machine's memory, for estimates that decide whether a request can fit before it is tried.
public enum MachineMemory {
    /// Physical memory in bytes.
    public static var physical: Int { Int(clamping: ProcessInfo.processInfo.physicalMemory) }

    /// Memory the kernel says can be had without swapping (`MemAvailable` in /proc/meminfo), else `physical`.
    public static var available: Int {
        guard case .success(let bytes) = BoundedFile.read("/proc/meminfo", limit: 1 << 20) else { return physical }
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let digits = line.dropFirst("MemAvailable:".count).filter(\.isNumber)
            if let kib = Int(digits) { return kib.multipliedReportingOverflow(by: 1024).overflow ? physical : kib * 1024 }
        }
        return physical
    }

    /// `1.2 GiB`, `512 MiB`, `800 B`.
    public static func format(_ bytes: Int) -> String {
        let d = Double(bytes)
        if d >= 0x1p40 { return String(format: "%.1f TiB", d / 0x1p40) }
        if d >= 0x1p30 { return String(format: "%.1f GiB", d / 0x1p30) }
        if d >= 0x1p20 { return String(format: "%.1f MiB", d / 0x1p20) }
        if d >= 0x1p10 { return String(format: "%.1f KiB", d / 0x1p10) }
        return "\(bytes) B"
    }
}
