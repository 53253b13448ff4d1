import Foundation

/// Dates as text through the C library (`strftime`), not Foundation's formatters: those need ICU's data, which
/// a static binary built without it (the GPU bundle, docs/cuda.md) does not carry.
public enum Timestamp {
    /// `date` in UTC as ISO 8601 with whole seconds, e.g. `2026-12-05T12:20:00Z`.
    public static func iso8601(_ date: Date) -> String { format(date, "%Y-%m-%dT%H:%M:%SZ", utc: true) }

    /// `date` formatted by the `strftime` pattern `pattern`, in UTC or in the process's local time zone (`TZ`).
    public static func format(_ date: Date, _ pattern: String, utc: Bool) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        if utc { gmtime_r(&seconds, &parts) } else { tzset(); localtime_r(&seconds, &parts) }
        var buffer = [CChar](repeating: 0, count: 64)
        let count = strftime(&buffer, buffer.count, pattern, &parts)
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
