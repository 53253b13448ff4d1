import Foundation
import SanaGraphKit

/// Output path templates for savers.
///
/// Placeholders: `{seed}` (the graph's `seed` param), `{date}` (YYYY-MM-DD) and `{time}` (HHMMSS) of the run's start
/// in local time, `{graph}` (graph file name without extension), `{params.NAME}` (any graph param), `{batch}` (index
/// of the image in the batch), `{counter}` (5-digit number one above the highest already in the folder).
/// Separators in the template itself are folders, as written (`out/{seed}.png`, `../renders/x.png`). A substituted
/// value is always part of one file name: `/`, `\` and control characters become `_`, leading dots become `_` (no
/// `..`, no hidden files) and it is cut to 100 bytes, so a prompt can never escape the output folder. The rendered
/// path must name a file: not empty, no NUL byte, not ending in `/`, `.` or `..`, each component at most 255
/// bytes and the whole at most 4095 (docs/nodes-image.md, docs/limits.md).
public struct PathTemplate: Sendable {
    public let template: String

    public init(_ template: String) { self.template = template }

    static let placeholders = ["seed", "date", "time", "graph", "params.NAME", "batch", "counter"]
    private static let counterMarker = "\u{1}COUNTER\u{1}"

    /// A problem visible without running (empty, a NUL byte, a folder, an unclosed `{`, an unknown placeholder), so
    /// `validate` reports it (exit 2); problems that depend on the run's params are found when rendering.
    public var syntaxProblem: String? {
        if template.isEmpty { return "the path is empty" }
        if template.utf8.contains(0) { return "the path holds a NUL byte" }
        if Paths.namesFolder(template) { return "the path names a folder, not a file" }
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{") {
            guard let close = rest[open...].firstIndex(of: "}") else { return "unclosed '{'" }
            let name = rest[rest.index(after: open)..<close]
            if !["seed", "date", "time", "graph", "batch", "counter"].contains(name) && !name.hasPrefix("params.") {
                return "unknown placeholder {\(name)}; known: " + Self.placeholders.map { "{\($0)}" }.joined(separator: " ")
            }
            rest = rest[rest.index(after: close)...]
        }
        return nil
    }

    /// Whether the template contains `name` as a placeholder.
    public func contains(_ name: String) -> Bool { template.contains("{\(name)}") }

    /// Renders every placeholder except `{counter}`; appends `.png` when the file name has no extension and
    /// `_{batch}` when `batchCount > 1` but the template has no `{batch}`.
    func render(run: RunInfo?, batchIndex: Int, batchCount: Int, now: Date = Date()) throws -> String {
        var source = template
        if source.isEmpty { throw ImageIOError.badTemplate(template: template, reason: "the path is empty") }
        if source.utf8.contains(0) { throw ImageIOError.badTemplate(template: template, reason: "the path holds a NUL byte") }
        if Paths.namesFolder(source) {
            throw ImageIOError.badTemplate(template: template, reason: "the path names a folder, not a file")
        }
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
        if Paths.namesFolder(out) {
            throw ImageIOError.badTemplate(template: template, reason: "'\(out)' names a folder, not a file")
        }
        if Paths.directory(of: out).contains(Self.counterMarker) {
            throw ImageIOError.badTemplate(template: template, reason: "{counter} may only appear in the file name")
        }
        if Paths.fileExtension(of: out) == nil { out += ".png" }
        // {counter} becomes 5 digits or more: leave room for it in the limits.
        let length = out.replacingOccurrences(of: Self.counterMarker, with: "000000")
        if length.utf8.count > GraphLimits.maxPathBytes {
            throw ImageIOError.badTemplate(template: template, reason: "the path is \(length.utf8.count) bytes, "
                                           + "above the limit of \(GraphLimits.maxPathBytes)")
        }
        if let long = length.split(separator: "/").first(where: { $0.utf8.count > 255 - 8 }) {
            throw ImageIOError.badTemplate(template: template, reason: "the file or folder name '\(long.prefix(40))…' "
                                           + "is \(long.utf8.count) bytes; names may have at most 247 (255 less room "
                                           + "for a collision suffix)")
        }
        return out
    }

    /// Renders the template and resolves `{counter}` against the files already in the output folder.
    public func resolve(run: RunInfo?, batchIndex: Int, batchCount: Int, now: Date = Date()) throws -> String {
        let rendered = try render(run: run, batchIndex: batchIndex, batchCount: batchCount, now: now)
        guard rendered.contains(Self.counterMarker) else { return rendered }
        let dir = Paths.directory(of: rendered)
        let file = Paths.fileName(of: rendered)
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
        return Paths.join(dir, parts.joined(separator: number))
    }

    private func value(of name: String, run: RunInfo?, batchIndex: Int, now: Date) throws -> String {
        switch name {
        case "counter":
            return Self.counterMarker
        case "batch":
            return String(batchIndex)
        case "date", "time":
            return Timestamp.format(run?.startedAt ?? now, name == "date" ? "%Y-%m-%d" : "%H%M%S", utc: false)
        case "graph":
            guard let run else { throw ImageIOError.badTemplate(template: template, reason: "{graph} needs a graph run") }
            return Self.sanitize(Paths.stem(of: run.graphFile))
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

    /// Makes a substituted value safe as part of one file name: `/`, `\\` and control characters become `_`,
    /// leading dots become `_` (so never `.`, `..` or a hidden file), and it is cut to 100 bytes of UTF-8.
    static func sanitize(_ s: String) -> String {
        var scalars = s.unicodeScalars.map { c -> Unicode.Scalar in
            (c == "/" || c == "\\" || c.value < 32 || c.value == 127) ? "_" : c
        }
        for i in scalars.indices {
            guard scalars[i] == "." else { break }
            scalars[i] = "_"
        }
        var out = String.UnicodeScalarView()
        var bytes = 0
        for c in scalars {
            bytes += String(c).utf8.count
            if bytes > 100 { break }
            out.append(c)
        }
        return String(out)
    }

    /// `a/b.png` + `_x` -> `a/b_x.png` (or appended when there is no extension).
    static func insertBeforeExtension(_ path: String, _ insert: String) -> String {
        let dir = Paths.directory(of: path)
        let file = Paths.fileName(of: path)
        let ext = Paths.fileExtension(of: file)
        let stem = ext.map { String(file.dropLast($0.count + 1)) } ?? file
        return Paths.join(dir, stem + insert + (ext.map { "." + $0 } ?? ""))
    }
}
