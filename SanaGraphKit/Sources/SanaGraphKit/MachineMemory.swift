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

/// A node refused before it ran because its memory estimate exceeds the machine's memory (exit 3).
public struct InsufficientMemoryError: CategorizedError {
    public var nodeID: String
    public var needed: Int
    public var physical: Int

    public init(nodeID: String, needed: Int, physical: Int = MachineMemory.physical) {
        self.nodeID = nodeID
        self.needed = needed
        self.physical = physical
    }

    public var category: ErrorCategory { .nodeFailed }

    public var description: String {
        "node '\(nodeID)' needs about \(MachineMemory.format(needed)) of memory, more than this machine's "
            + "\(MachineMemory.format(physical)); nothing was started. Lower the image size or batch (or use tiling "
            + "where the node offers it)"
    }
}

/// A loaded model that can say how much memory one forward pass needs for an input shape (activations, not
/// weights), so a node can be refused before it starts instead of failing after minutes.
public protocol ActivationEstimating {
    /// Peak bytes of activations for one forward pass on an input of `shape` (e.g. a latent [B, C, h, w]).
    func activationBytes(inputShape shape: [Int]) -> Int
}

extension MachineMemory {
    /// `a × b × …` or `Int.max` when it overflows (estimates saturate instead of trapping).
    public static func product(_ factors: [Int]) -> Int {
        var p = 1
        for f in factors {
            let (r, o) = p.multipliedReportingOverflow(by: max(0, f))
            if o { return .max }
            p = r
        }
        return p
    }

    /// `a + b + …`, saturating.
    public static func sum(_ terms: [Int]) -> Int {
        var s = 0
        for t in terms {
            let (r, o) = s.addingReportingOverflow(max(0, t))
            if o { return .max }
            s = r
        }
        return s
    }

    /// Bytes of a checkpoint's tensors once converted to fp32 (from the headers; nothing is read), or nil when the
    /// folder can't be opened (the loader reports why).
    public static func fp32WeightBytes(shapes: [[Int]]) -> Int {
        sum(shapes.map { product($0 + [4]) })
    }
}
