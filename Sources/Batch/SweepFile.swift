import Foundation
import Yams

/// Param sets from a file (`--sweep-file F`): one item per row, by extension
/// - `.yaml`/`.yml`: a list of mappings, `- {seed: 1, prompt: a cat}`;
/// - `.csv`: a header row of param names, then one row per item (RFC 4180 quoting; an empty unquoted cell leaves
///   the param at its default, `""` is an empty string);
/// - `.jsonl`/`.ndjson`: one JSON object per line (strings, numbers, booleans); empty lines are skipped.
/// Values are text converted like `--set` values (a YAML scalar as written; a JSON number as printed).
/// A row need not set every column's param; one that sets none is an item with the defaults.
public struct SweepFile: Sendable {
    public var path: String
    /// Every name some row sets, in first-seen order.
    public var names: [String]
    public var rows: [[SweepValue]]

    public init(path: String, names: [String], rows: [[SweepValue]]) {
        self.path = path
        self.names = names
        self.rows = rows
    }

    public static func load(_ path: String) throws -> SweepFile {
        let ext = (path as NSString).pathExtension.lowercased()
        let text = try SweepAxis.readText(path)
        let rows: [[SweepValue]]
        switch ext {
        case "yaml", "yml": rows = try yamlRows(text, path: path)
        case "csv": rows = try csvRows(text, path: path)
        case "jsonl", "ndjson": rows = try jsonlRows(text, path: path)
        default:
            throw BatchError.sweepFile(path: path, line: nil,
                                       reason: "unknown kind of sweep file; name it .yaml, .csv or .jsonl")
        }
        guard !rows.isEmpty else { throw BatchError.emptySweep(source: path) }
        var names: [String] = []
        for row in rows { for v in row where !names.contains(v.name) { names.append(v.name) } }
        return SweepFile(path: path, names: names, rows: rows)
    }

    private static func checkName(_ name: String, path: String, line: Int?) throws -> String {
        var n = name
        if n.hasPrefix("params.") { n.removeFirst("params.".count) }
        guard isParamName(n) else {
            throw BatchError.sweepFile(path: path, line: line, reason: "'\(name)' is not a param name (letters, digits and _)")
        }
        return n
    }

    // MARK: YAML

    static func yamlRows(_ text: String, path: String) throws -> [[SweepValue]] {
        let root: Yams.Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw BatchError.sweepFile(path: path, line: nil, reason: "not valid YAML: \(error)")
        } catch {
            throw BatchError.sweepFile(path: path, line: nil, reason: "not valid YAML: \(error)")
        }
        guard let root else { return [] }
        guard case .sequence(let items) = root else {
            throw BatchError.sweepFile(path: path, line: root.mark.map { $0.line },
                                       reason: "expected a list of param sets, such as '- {seed: 1, prompt: a cat}'")
        }
        return try items.map { item in
            let line = item.mark?.line
            guard case .mapping(let m) = item else {
                throw BatchError.sweepFile(path: path, line: line, reason: "each item must be a mapping of param names to values")
            }
            var row: [SweepValue] = []
            for (key, value) in m {
                let keyLine = key.mark?.line ?? line
                let name = try checkName(key.scalar?.string ?? "", path: path, line: keyLine)
                guard case .scalar(let scalar) = value, !(scalar.style == .plain && ["~", "null", "Null", "NULL", ""].contains(scalar.string)) else {
                    throw BatchError.sweepFile(path: path, line: value.mark?.line ?? keyLine,
                                               reason: "param '\(name)': the value must be a single value (not a list, mapping or null)")
                }
                if row.contains(where: { $0.name == name }) {
                    throw BatchError.sweepFile(path: path, line: keyLine, reason: "param '\(name)' is set twice")
                }
                row.append(SweepValue(name, scalar.string))
            }
            return row
        }
    }

    // MARK: CSV

    static func csvRows(_ text: String, path: String) throws -> [[SweepValue]] {
        let records = try parseCSV(text, path: path)
        guard let header = records.first else { return [] }
        let names = try header.fields.map { try checkName($0.text, path: path, line: header.line) }
        for (i, name) in names.enumerated() where names[..<i].contains(name) {
            throw BatchError.sweepFile(path: path, line: header.line, reason: "column '\(name)' appears twice")
        }
        return try records.dropFirst().map { record in
            guard record.fields.count == names.count else {
                throw BatchError.sweepFile(path: path, line: record.line,
                                           reason: "\(record.fields.count) fields, but the header has \(names.count)")
            }
            return zip(names, record.fields).compactMap { name, field in
                field.text.isEmpty && !field.quoted ? nil : SweepValue(name, field.text)
            }
        }
    }

    struct CSVField { var text: String; var quoted: Bool }
    struct CSVRecord { var line: Int; var fields: [CSVField] }

    /// RFC 4180: comma-separated, fields in double quotes may hold commas, newlines and `""`; blank lines skipped.
    static func parseCSV(_ text: String, path: String) throws -> [CSVRecord] {
        var records: [CSVRecord] = []
        var fields: [CSVField] = []
        var field = ""
        var quoted = false
        var inQuotes = false
        var line = 1
        var recordLine = 1
        var chars = Array(text.unicodeScalars)
        if chars.first == "\u{FEFF}" { chars.removeFirst() }  // a BOM from spreadsheet exports
        var i = 0
        func endRecord() {
            fields.append(CSVField(text: field, quoted: quoted))
            if !(fields.count == 1 && fields[0].text.isEmpty && !fields[0].quoted) {
                records.append(CSVRecord(line: recordLine, fields: fields))
            }
            fields = []
            field = ""
            quoted = false
        }
        while i < chars.count {
            let c = chars[i]
            if inQuotes {
                if c == "\"" {
                    if i + 1 < chars.count && chars[i + 1] == "\"" {
                        field.unicodeScalars.append("\"")
                        i += 1
                    } else {
                        inQuotes = false
                    }
                } else {
                    if c == "\n" { line += 1 }
                    field.unicodeScalars.append(c)
                }
            } else if c == "\"" {
                guard field.isEmpty && !quoted else {
                    throw BatchError.sweepFile(path: path, line: line, reason: "a quote inside an unquoted field; quote the whole field and double the quote (\"\")")
                }
                inQuotes = true
                quoted = true
            } else if c == "," {
                fields.append(CSVField(text: field, quoted: quoted))
                field = ""
                quoted = false
            } else if c == "\n" || c == "\r" {
                if c == "\r" && i + 1 < chars.count && chars[i + 1] == "\n" { i += 1 }
                endRecord()
                line += 1
                recordLine = line
            } else {
                if quoted {
                    throw BatchError.sweepFile(path: path, line: line, reason: "text after a closing quote")
                }
                field.unicodeScalars.append(c)
            }
            i += 1
        }
        if inQuotes { throw BatchError.sweepFile(path: path, line: recordLine, reason: "a quoted field is not closed") }
        endRecord()
        return records
    }

    // MARK: JSON lines

    static func jsonlRows(_ text: String, path: String) throws -> [[SweepValue]] {
        var rows: [[SweepValue]] = []
        for (i, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
            let object: [String: JSONScalar]
            do {
                object = try JSONDecoder().decode([String: JSONScalar].self, from: Data(line.utf8))
            } catch let error as JSONScalar.Invalid {
                throw BatchError.sweepFile(path: path, line: i + 1, reason: error.description)
            } catch {
                throw BatchError.sweepFile(path: path, line: i + 1,
                                           reason: "not a JSON object of param values, such as {\"seed\": 1, \"prompt\": \"a cat\"}")
            }
            var row: [SweepValue] = []
            for key in object.keys.sorted() {
                row.append(SweepValue(try checkName(key, path: path, line: i + 1), object[key]!.text))
            }
            rows.append(row)
        }
        return rows
    }
}

/// A JSON scalar as the text a `--set` would give.
private struct JSONScalar: Decodable {
    struct Invalid: Error, CustomStringConvertible {
        var description: String
    }

    var text: String

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { throw Invalid(description: "a value is null; leave the param out instead") }
        if let b = try? c.decode(Bool.self) { text = String(b) }
        else if let i = try? c.decode(Int.self) { text = String(i) }
        else if let d = try? c.decode(Double.self) { text = String(d) }
        else if let s = try? c.decode(String.self) { text = s }
        else { throw Invalid(description: "values must be strings, numbers or booleans (not lists or objects)") }
    }
}
