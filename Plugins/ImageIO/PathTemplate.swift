import Foundation
import SanaGraphKit

/// Output path templates for savers.
///
/// Placeholders: `{seed}` (the graph's `seed` param), `{date}` (YYYY-MM-DD) and `{time}` (HHMMSS) of the run's start
/// in local time, `{graph}` (graph file name without extension), `{params.NAME}` (any graph param), `{batch}` (index
/// of the image in the batch), `{counter}` (5-digit number one above the highest already in the folder).
/// Substituted values have `/` and control characters replaced by `_` and are cut to 100 characters, so a prompt
/// can never escape the output folder.
public struct PathTemplate: Sendable {
    public let template: String

    public init(_ template: String) { self.template = template }

    static let placeholders = ["seed", "date", "time", "graph", "params.NAME", "batch", "counter"]
    private static let counterMarker = "\u{1}COUNTER\u{1}"

    /// Whether the template contains `name` as a placeholder.
    public func contains(_ name: String) -> Bool { template.contains("{\(name)}") }

    /// Renders every placeholder except `{counter}`; appends `.png` when the file name has no extension and
    /// `_{batch}` when `batchCount > 1` but the template has no `{batch}`.
    func render(run: RunInfo?, batchIndex: Int, batchCount: Int, now: Date = Date()) throws -> String {
        var source = template
        if source.isEmpty { throw ImageIOError.badTemplate(template: template, reason: "the path is empty") }
        if source.hasSuffix("/") { throw ImageIOError.badTemplate(template: template, reason: "the path names a folder, not a file") }
        if batchCount > 1 && !source.contains("{batch}") {
            source = Self.insertBeforeExtension(source, "_{batch}")
        }
        var out = ""
        var rest = Substring(source)
        while let open = rest.firstIndex(of: "{") {
            out += rest[..<open]
            guard let close = rest[open...].firstIndex(of: "}") else {
                throw ImageIOError.badTemplate(template: template, reason: "unclosed '{'")
            }
            let name = String(rest[rest.index(after: open)..<close])
            out += try value(of: name, run: run, batchIndex: batchIndex, now: now)
            rest = rest[rest.index(after: close)...]
        }
        out += rest
        let file = (out as NSString).lastPathComponent
        if (out as NSString).deletingLastPathComponent.contains(Self.counterMarker) {
            throw ImageIOError.badTemplate(template: template, reason: "{counter} may only appear in the file name")
        }
        if (file as NSString).pathExtension.isEmpty { out += ".png" }
        return out
    }

    /// Renders the template and resolves `{counter}` against the files already in the output folder.
    public func resolve(run: RunInfo?, batchIndex: Int, batchCount: Int, now: Date = Date()) throws -> String {
        let rendered = try render(run: run, batchIndex: batchIndex, batchCount: batchCount, now: now)
        guard rendered.contains(Self.counterMarker) else { return rendered }
        let dir = (rendered as NSString).deletingLastPathComponent
        let file = (rendered as NSString).lastPathComponent
        let parts = file.components(separatedBy: Self.counterMarker)
        let prefix = parts[0], suffix = parts[parts.count - 1]
        var highest = 0
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: dir.isEmpty ? "." : dir)) ?? []
        for name in entries where name.hasPrefix(prefix) && name.hasSuffix(suffix)
            && name.count > prefix.count + suffix.count {
            let middle = name.dropFirst(prefix.count).dropLast(suffix.count)
            // Later occurrences of {counter} in the same name repeat the number; compare the first run of digits.
            let digits = middle.prefix { $0.isASCII && $0.isNumber }
            if digits.count >= 5, digits.count == middle.count || parts.count > 2, let n = Int(digits) {
                highest = max(highest, n)
            }
        }
        let number = String(format: "%05d", highest + 1)
        return (dir.isEmpty ? "" : dir + "/") + parts.joined(separator: number)
    }

    private func value(of name: String, run: RunInfo?, batchIndex: Int, now: Date) throws -> String {
        switch name {
        case "counter":
            return Self.counterMarker
        case "batch":
            return String(batchIndex)
        case "date", "time":
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone.current
            formatter.dateFormat = name == "date" ? "yyyy-MM-dd" : "HHmmss"
            return formatter.string(from: run?.startedAt ?? now)
        case "graph":
            guard let run else { throw ImageIOError.badTemplate(template: template, reason: "{graph} needs a graph run") }
            let file = (run.graphFile as NSString).lastPathComponent
            return Self.sanitize((file as NSString).deletingPathExtension)
        case "seed":
            guard let seed = run?.params["seed"] else {
                throw ImageIOError.badTemplate(template: template, reason: "{seed} used but the graph has no 'seed' param")
            }
            return Self.sanitize(seed.description)
        default:
            if name.hasPrefix("params.") {
                let param = String(name.dropFirst("params.".count))
                guard let v = run?.params[param] else {
                    let known = run?.params.keys.sorted().joined(separator: ", ") ?? ""
                    throw ImageIOError.badTemplate(template: template,
                                                   reason: "{\(name)}: the graph has no param '\(param)' (params: \(known.isEmpty ? "none" : known))")
                }
                return Self.sanitize(v.description)
            }
            throw ImageIOError.badTemplate(template: template, reason: "unknown placeholder {\(name)}; known: "
                + Self.placeholders.map { "{\($0)}" }.joined(separator: " "))
        }
    }

    /// Makes a substituted value safe as part of one file name.
    static func sanitize(_ s: String) -> String {
        let cleaned = String(s.unicodeScalars.map { c -> Character in
            (c == "/" || c == "\\" || c.value < 32 || c.value == 127) ? "_" : Character(c)
        })
        let cut = String(cleaned.prefix(100))
        return cut == "." || cut == ".." ? "_" : cut
    }

    /// `a/b.png` + `_x` -> `a/b_x.png` (or appended when there is no extension).
    static func insertBeforeExtension(_ path: String, _ insert: String) -> String {
        let dir = (path as NSString).deletingLastPathComponent
        let file = (path as NSString).lastPathComponent
        let ext = (file as NSString).pathExtension
        let stem = ext.isEmpty ? file : String(file.dropLast(ext.count + 1))
        let newFile = stem + insert + (ext.isEmpty ? "" : "." + ext)
        return dir.isEmpty ? newFile : dir + "/" + newFile
    }
}
