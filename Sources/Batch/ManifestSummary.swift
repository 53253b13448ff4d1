import Foundation

/// What a set of manifest records says: items by their latest status, failures, time per item and per node type
/// (`sanagraph manifest summarize`), and the estimates `sanagraph plan --sweep … --manifest` prints.
public struct ManifestSummary: Sendable {
    /// Each item's latest record, by item key, in the order items were first seen.
    public var latest: [ManifestRecord]
    /// Every record read.
    public var records: [ManifestRecord]

    public init(records: [ManifestRecord]) {
        self.records = records
        var order: [String] = []
        var byKey: [String: ManifestRecord] = [:]
        for r in records {
            if byKey[r.key] == nil { order.append(r.key) }
            // A later "skipped" line restates an item that is done; it never hides a later failure's cause.
            byKey[r.key] = r
        }
        latest = order.map { byKey[$0]! }
    }

    /// Latest records with this status.
    public func items(_ status: ManifestRecord.Status) -> [ManifestRecord] { latest.filter { $0.status == status } }

    /// Records of items that actually ran to the end (status ok): the ones timings are taken from.
    public var ran: [ManifestRecord] { records.filter { $0.status == .ok } }

    /// Attempts beyond the first (I/O retries).
    public var retries: Int { records.reduce(0) { $0 + max(0, $1.attempts - 1) } }

    /// Node-type totals over the records that ran (ok or failed).
    public var nodeTypes: [(type: String, stats: ManifestRecord.NodeTypeStats)] {
        var totals: [String: ManifestRecord.NodeTypeStats] = [:]
        for r in records where r.status == .ok || r.status == .failed {
            for (type, s) in r.nodeTypes {
                var t = totals[type] ?? .init()
                t.runs += s.runs
                t.cached += s.cached
                t.skipped += s.skipped
                t.seconds += s.seconds
                totals[type] = t
            }
        }
        return totals.keys.sorted { totals[$0]!.seconds > totals[$1]!.seconds || (totals[$0]!.seconds == totals[$1]!.seconds && $0 < $1) }
            .map { ($0, totals[$0]!) }
    }

    /// Per-item figures from the records that ran.
    public struct Estimate: Sendable, Equatable {
        /// Items the figures come from.
        public var samples: Int
        public var medianSeconds: Double
        public var meanSeconds: Double
        public var maxSeconds: Double
        public var totalSeconds: Double
        /// The largest per-item peak resident memory recorded, if any.
        public var peakRSSBytes: Int?
        /// Seconds spent loading models (loader nodes that ran), over all samples: the cost a new process pays once.
        public var modelLoadSeconds: Double
        public var modelLoads: Int
    }

    /// Figures from ok records, optionally only those of one graph text (its SHA-256); nil when there are none.
    public func estimate(graphSHA256: String? = nil) -> Estimate? {
        let sample = ran.filter { graphSHA256 == nil || $0.graphSHA256 == graphSHA256 }
        guard !sample.isEmpty else { return nil }
        let seconds = sample.map(\.seconds).sorted()
        let n = seconds.count
        let median = n % 2 == 1 ? seconds[n / 2] : (seconds[n / 2 - 1] + seconds[n / 2]) / 2
        let total = seconds.reduce(0, +)
        let peaks = sample.compactMap(\.peakRSSBytes)
        let loads = sample.reduce(0) { $0 + $1.modelLoads }
        let loadSeconds = sample.reduce(0.0) { $0 + $1.modelLoadSeconds }
        return Estimate(samples: n, medianSeconds: median, meanSeconds: total / Double(n), maxSeconds: seconds[n - 1],
                        totalSeconds: total, peakRSSBytes: peaks.max(), modelLoadSeconds: loadSeconds,
                        modelLoads: loads)
    }

    /// The report of `sanagraph manifest summarize`.
    public func render(files: [String], lines: Int, warnings: Int) -> String {
        var out = ""
        let skippedLines = warnings > 0 ? ", \(warnings) skipped" : ""
        out += "manifests: \(files.joined(separator: ", ")) (\(lines) line\(lines == 1 ? "" : "s")\(skippedLines))\n"
        let counts = ManifestRecord.Status.allCases.compactMap { status -> String? in
            let n = items(status).count
            return n == 0 ? nil : "\(n) \(status.rawValue)"
        }
        out += "items: \(latest.count)" + (counts.isEmpty ? "" : " (" + counts.joined(separator: ", ") + ")")
        if retries > 0 { out += "; \(retries) retr\(retries == 1 ? "y" : "ies")" }
        out += "\n"
        let shards = Set(records.map(\.shard)).sorted()
        if shards.count > 1 || (shards.first.map { $0 != "0/1" && !$0.isEmpty } ?? false) {
            out += "shards: \(shards.joined(separator: ", "))\n"
        }
        if let e = estimate() {
            out += String(format: "time per item (%d ran): median %@, mean %@, max %@; total %@\n", e.samples,
                          formatDuration(e.medianSeconds), formatDuration(e.meanSeconds),
                          formatDuration(e.maxSeconds), formatDuration(e.totalSeconds))
            out += "model loads: \(e.modelLoads)"
            if let peak = e.peakRSSBytes { out += "; peak memory per item: up to \(formatByteCount(peak))" }
            out += "\n"
        }
        let types = nodeTypes
        if !types.isEmpty {
            out += "per node type:\n"
            var rows = [["  type", "runs", "cached", "skipped", "seconds", "per run"]]
            for (type, s) in types {
                rows.append(["  " + type, String(s.runs), String(s.cached), String(s.skipped),
                             String(format: "%.3f", s.seconds),
                             s.runs > 0 ? String(format: "%.3f", s.seconds / Double(s.runs)) : "-"])
            }
            out += alignedTable(rows)
        }
        let failed = items(.failed) + items(.interrupted)
        if !failed.isEmpty {
            out += "failed items:\n"
            for r in failed.sorted(by: { $0.item < $1.item }).prefix(50) {
                let error = (r.error ?? "").split(separator: "\n").first.map(String.init) ?? ""
                out += "  item \(r.item) (\(r.paramsLabel)), exit \(r.exitCode): \(error)\n"
            }
            if failed.count > 50 { out += "  … and \(failed.count - 50) more\n" }
        }
        return out
    }
}

/// `0.42s`, `12.3s`, `3m05s`, `2h10m`.
public func formatDuration(_ s: Double) -> String {
    if s < 10 { return String(format: "%.2fs", s) }
    if s < 60 { return String(format: "%.1fs", s) }
    let total = Int(s.rounded())
    if total < 3600 { return String(format: "%dm%02ds", total / 60, total % 60) }
    return String(format: "%dh%02dm", total / 3600, (total % 3600) / 60)
}

/// `1.23 GiB`, `512.0 MiB`, `800 B`.
public func formatByteCount(_ n: Int) -> String {
    let d = Double(n)
    if d >= Double(1 << 30) { return String(format: "%.2f GiB", d / Double(1 << 30)) }
    if d >= Double(1 << 20) { return String(format: "%.1f MiB", d / Double(1 << 20)) }
    if d >= Double(1 << 10) { return String(format: "%.1f KiB", d / Double(1 << 10)) }
    return "\(n) B"
}

/// Left-aligned first column, right-aligned numbers, two spaces apart.
func alignedTable(_ rows: [[String]]) -> String {
    guard let columns = rows.map(\.count).max() else { return "" }
    var widths = [Int](repeating: 0, count: columns)
    for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
    return rows.map { row in
        row.enumerated().map { i, cell in
            let pad = String(repeating: " ", count: widths[i] - cell.count)
            return i == 0 ? cell + pad : pad + cell
        }.joined(separator: "  ")
    }.joined(separator: "\n") + "\n"
}
