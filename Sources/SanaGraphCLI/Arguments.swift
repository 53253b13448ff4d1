import ArgumentParser
import Foundation
import GraphRuntime

// Typed command-line values: each parses through ArgumentParser's `ExpressibleByArgument`, so a bad value is
// reported in one style ("The value 'x' is invalid for '--opt <kind>'") and exits 2 like every usage error.
// Environment variables that take the same kinds of values use the same parsers.

/// A byte count: `0`, `1000000` (bytes), `512K`, `512M`, `4G`, `1.5GiB`, `2T` (binary units: K = 1024).
/// At most 1 EiB (2^60 bytes), so any size fits an `Int` with room to add.
struct ByteSize: ExpressibleByArgument, Equatable, CustomStringConvertible {
    static let maximum = 1 << 60

    var bytes: Int

    init(bytes: Int) { self.bytes = bytes }

    init?(argument: String) {
        let t = argument.trimmingCharacters(in: .whitespaces).uppercased()
        let units: [(String, Double)] = [("TIB", 0x1p40), ("GIB", 0x1p30), ("MIB", 0x1p20), ("KIB", 0x1p10),
                                         ("TB", 0x1p40), ("GB", 0x1p30), ("MB", 0x1p20), ("KB", 0x1p10),
                                         ("T", 0x1p40), ("G", 0x1p30), ("M", 0x1p20), ("K", 0x1p10), ("B", 1)]
        var number = Substring(t), scale = 1.0
        for (suffix, s) in units where t.hasSuffix(suffix) {
            number = t.dropLast(suffix.count)
            scale = s
            break
        }
        // Digits and at most one dot: no signs, exponents, hex, "inf" or "nan".
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
              number.filter({ $0 == "." }).count <= 1, number != ".", let v = Double(number) else { return nil }
        let total = (v * scale).rounded(.down)
        guard total.isFinite, total <= Double(Self.maximum) else { return nil }
        bytes = Int(total)
    }

    var description: String { String(bytes) }

    static var defaultCompletionKind: CompletionKind { .default }
}

/// `--cache-memory`: `auto` or a size.
enum MemoryBudget: ExpressibleByArgument, Equatable {
    case auto
    case size(ByteSize)

    init?(argument: String) {
        if argument == "auto" { self = .auto; return }
        guard let size = ByteSize(argument: argument) else { return nil }
        self = .size(size)
    }

    var defaultValueDescription: String { "auto" }
}

extension DiskCacheMode: ExpressibleByArgument {}

/// `--set NAME=VALUE`: NAME is a param name (letters, digits, `_`; `params.` in front is allowed); VALUE is
/// text, converted to the param's declared type later, exactly like a value in a params file.
struct ParamAssignment: ExpressibleByArgument, Equatable {
    var name: String
    var value: String

    init(name: String, value: String) {
        self.name = name
        self.value = value
    }

    init?(argument: String) {
        guard let eq = argument.firstIndex(of: "=") else { return nil }
        var name = String(argument[..<eq])
        if name.hasPrefix("params.") { name.removeFirst("params.".count) }
        guard Self.isName(name) else { return nil }
        self.init(name: name, value: String(argument[argument.index(after: eq)...]))
    }

    static func isName(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, first == "_" || (first.isASCII && first.properties.isAlphabetic)
        else { return false }
        return s.unicodeScalars.allSatisfy { $0 == "_" || ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) }
    }
}
