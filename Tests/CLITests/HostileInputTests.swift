import Foundation
import Synchronization
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The hostile-input suite (issue #23): generated cases of every class of bad input, run against the built binary.
/// Every case checks: no crash (signal, trap status, Swift runtime failure), no hang (30 s), an exit code from the
/// documented set for that situation, a message naming the file/node/param when it fails, no partial output
/// file, and a cache that `cache verify` finds clean. Generators are seeded (SANAGRAPH_FUZZ_SEED, default 23);
/// SANAGRAPH_FUZZ_ITERATIONS sets the cases per class (6 under `make test`; `make fuzz` runs 60).
@Suite(.serialized) struct HostileInputTests {
    static let noiseGraph = """
        sanagraph: 1
        description: hostile-input base graph
        params:
          out: {type: path, default: "out/noise.safetensors"}
          seed: {type: int, default: 7}
          size: {type: int, default: 64, min: 8, max: 4096}
          scale: {type: float, default: 1.5}
          flag: {type: bool, default: false}
          name: {type: string, default: "noise"}
        nodes:
          noise: {type: latent.noise, params: {width: "${size}", height: "${size}", channels: 4, downscale: 8, seed: "${seed}"}}
          save: {type: tensor.save, inputs: {tensor: noise}, params: {path: "${out}", name: "${name}"}}

        """

    static let imageGraph = """
        sanagraph: 1
        params:
          input: {type: path}
          out: {type: string, default: "out/{seed}.png"}
          seed: {type: int, default: 3}
          label: {type: string, default: "x"}
        nodes:
          image: {type: image.load, params: {path: "${input}"}}
          save: {type: image.save, inputs: {image: image}, params: {path: "${out}", collision: suffix}}

        """

    static let png = TestSupport.fixture("ImageIO/rgb8.png")
    static let model = TestSupport.repositoryRoot.appendingPathComponent("models/sana-shapes").path

    // MARK: YAML

    static let yamlSpecials = ["{", "}", "[", "]", ":", ",", "&a", "*a", "!", "|", ">", "'", "\"", "#", "%", "@", "`",
                               "- ", "? ", "\t", "\n", "  ", "\\", "${", "$${", "}}", "\u{0}", "\u{FEFF}", "\u{7F}",
                               "é", "\u{1F600}", "<<: *a", "!!binary", "---", "..."]

    @Test func yamlSyntaxAndTypeGarbageNeverCrashes() throws {
        var rng = Fuzz.random("yaml")
        let dir = Hostile.folder("yaml")
        defer { try? FileManager.default.removeItem(at: dir) }
        let base = Array(Self.noiseGraph.unicodeScalars)
        for i in 0..<(Fuzz.iterations * 4) {
            var text = base
            for _ in 0..<rng.int(1...6) {
                let at = rng.int(0...text.count)
                switch rng.int(0...3) {
                case 0: text.insert(contentsOf: rng.pick(Self.yamlSpecials).unicodeScalars, at: at)
                case 1: if at < text.count { text.removeSubrange(at..<min(text.count, at + rng.int(1...20))) }
                case 2: text = Array(text.prefix(at))
                default:
                    let start = rng.int(0...max(0, text.count - 1))
                    text.insert(contentsOf: text[start..<min(text.count, start + rng.int(1...40))], at: at)
                }
            }
            let file = dir.appendingPathComponent("g\(i).yaml")
            var s = String.UnicodeScalarView()
            s.append(contentsOf: text)
            try Hostile.write(String(s), file)
            let r = try Hostile.run(["validate", file.path], in: dir)
            Hostile.expect(r, allowed: [0, 2], mentions: [file.path])
        }
        // Every param value replaced by values of other YAML types.
        let hostileValues = ["~", "[1, 2]", "{a: 1}", "\"str\"", "1e400", "-0", "0x7fffffffffffffffffff",
                             "1:0:0:0:0:0:0:0:0:0:0:0", ".nan", "-.inf", "!!binary aGVsbG8=", "!!timestamp 2001-12-14",
                             "yes", "99999999999999999999999", "-9223372036854775808", "0b102", "\"\\0\"", "''", "é",
                             "!!str 5", "!!int x", "!!float 1", "[[[[]]]]", "*undefined"]
        for i in 0..<(Fuzz.iterations * 4) {
            let keys = ["width", "height", "channels", "downscale", "seed", "path", "name", "default", "type", "min"]
            let key = rng.pick(keys), value = rng.pick(hostileValues)
            var text = Self.noiseGraph
            if let range = text.range(of: "\(key): ") {
                let end = text[range.upperBound...].firstIndex { $0 == "," || $0 == "}" || $0 == "\n" } ?? text.endIndex
                text.replaceSubrange(range.upperBound..<end, with: value)
            }
            let file = dir.appendingPathComponent("t\(i).yaml")
            try Hostile.write(text, file)
            let r = try Hostile.run(["run", file.path, "--quiet", "--cache", "off", "--set", "out=out/t\(i).safetensors"],
                                    in: dir)
            Hostile.expect(r, allowed: [0, 2, 3, 6], mentions: [file.path, "node '"])
        }
        #expect(Hostile.files(in: dir).allSatisfy { !$0.hasPrefix("out/.") }, "\(Hostile.files(in: dir))")
    }

    @Test func aliasBombsAndDeepNestingAreRefusedQuickly() throws {
        var rng = Fuzz.random("bombs")
        let dir = Hostile.folder("bombs")
        defer { try? FileManager.default.removeItem(at: dir) }
        for i in 0..<Fuzz.iterations {
            // Billion laughs: each level repeats the one before `width` times, once as a value and once as a key.
            let levels = rng.int(6...12), width = rng.int(5...10)
            var lines = ["sanagraph: 1", "bomb0: &b0 [\"lol\"]"]
            for l in 1...levels {
                lines.append("bomb\(l): &b\(l) [" + Array(repeating: "*b\(l - 1)", count: width).joined(separator: ", ") + "]")
            }
            lines.append(rng.chance(0.5) ? "? *b\(levels)\n: 1" : "nodes: {a: {type: tensor.save, params: *b\(levels)}}")
            let file = dir.appendingPathComponent("bomb\(i).yaml")
            try Hostile.write(lines.joined(separator: "\n") + "\n", file)
            let r = try Hostile.run(["validate", file.path], in: dir)
            Hostile.expect(r, allowed: [2], mentions: ["expands to more than", "unknown top-level key"])
            #expect(r.seconds < 10, "\(r.seconds) s for an alias bomb")
        }
        for i in 0..<Fuzz.iterations {
            let depth = rng.pick([65, 1000, 100_000, 1_000_000])
            let text: String
            switch rng.int(0...2) {
            case 0: text = "sanagraph: 1\nnodes: " + String(repeating: "[", count: depth) + "\n"
            case 1: text = "sanagraph: 1\nnodes: " + String(repeating: "{a: ", count: depth) + "\n"
            default:
                text = "sanagraph: 1\nnodes:\n" + (0..<min(depth, 3000)).map { String(repeating: " ", count: $0 + 1) + "k\($0):" }
                    .joined(separator: "\n") + "\n"
            }
            let file = dir.appendingPathComponent("deep\(i).yaml")
            try Hostile.write(text, file)
            let r = try Hostile.run(["validate", file.path], in: dir)
            Hostile.expect(r, allowed: [2], mentions: ["nested more than", "YAML syntax error", "above the limit"])
        }
        // The same limits hold for --params files.
        let params = dir.appendingPathComponent("bomb.params.yaml")
        try Hostile.write("a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                          + "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                          + "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                          + "seed: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n", params)
        let graph = dir.appendingPathComponent("g.yaml")
        try Hostile.write(Self.noiseGraph, graph)
        let r = try Hostile.run(["validate", graph.path, "--params", params.path], in: dir)
        Hostile.expect(r, allowed: [2], mentions: [params.path])
    }

    @Test func unicodeControlCharactersNulBytesAndGiantStrings() throws {
        var rng = Fuzz.random("strings")
        let dir = Hostile.folder("strings")
        defer { try? FileManager.default.removeItem(at: dir) }
        let graph = dir.appendingPathComponent("g.yaml")
        try Hostile.write(Self.noiseGraph, graph)
        let pieces = ["\u{1}", "\u{1B}[2J", "\r", "\u{7F}", "\u{202E}", "\u{FEFF}", "é", "\u{1F600}", "../", "/", ".",
                      "\\", "${", "{seed}", "%s", "'", "\"", " "]
        for i in 0..<(Fuzz.iterations * 2) {
            let text = (0..<rng.int(1...8)).map { _ in rng.pick(pieces) }.joined()
            let params = dir.appendingPathComponent("p\(i).yaml")
            // Double-quoted YAML with escapes: control characters and NUL reach the params as themselves.
            var escaped = ""
            for c in text.unicodeScalars {
                if c.value < 32 || c.value == 127 {
                    escaped += String(format: "\\x%02x", c.value)
                } else if c == "\"" || c == "\\" {
                    escaped += "\\" + String(c)
                } else {
                    escaped += String(c)
                }
            }
            let nul = rng.chance(0.3)
            try Hostile.write("name: \"\(escaped)\"\nout: \"out/\(i)\(nul ? "\\0x" : "").safetensors\"\n", params)
            let r = try Hostile.run(["run", graph.path, "--quiet", "--cache", "off", "--params", params.path], in: dir)
            Hostile.expect(r, allowed: nul ? [2] : [0, 2], mentions: [params.path, "NUL", "name"])
        }
        // A giant string: over the 1 MiB string limit, in a params file and through --set from the shell's limit.
        let giant = dir.appendingPathComponent("giant.yaml")
        try Hostile.write("name: \"" + String(repeating: "ab", count: 600_000) + "\"\n", giant)
        let r = try Hostile.run(["validate", graph.path, "--params", giant.path], in: dir)
        Hostile.expect(r, allowed: [2], mentions: ["above the limit"])
        let huge = dir.appendingPathComponent("huge.yaml")
        try Hostile.write("name: x\n" + String(repeating: "#", count: 17 << 20) + "\n", huge)
        let r2 = try Hostile.run(["validate", graph.path, "--params", huge.path], in: dir)
        Hostile.expect(r2, allowed: [2], mentions: [huge.path])
        // A NUL never cut a path short: every output has its full name.
        #expect(Hostile.files(in: dir).filter { $0.hasPrefix("out/") }.allSatisfy { $0.hasSuffix(".safetensors") },
                "\(Hostile.files(in: dir))")
    }

    // MARK: numbers

    static let numberTexts = ["0", "-0", "7", "7.0", "7.5", "-1", "1e30", "1e308", "1e400", "-1e400", "nan", ".nan", "inf",
                              ".inf", "-.inf", "0x10", "0o17", "0b101", "1_000", "1:30", "1:0:0:0:0:0:0:0:0:0:0:0",
                              "9223372036854775807", "9223372036854775808", "-9223372036854775809",
                              "99999999999999999999999999", "", " ", "abc", "1,5", "1.5.5", "+5", "٣", "１", "0.1e-400",
                              "true", "yes", "~", "[1]"]

    @Test func numbersFromTheCommandLineEnvironmentAndFilesAreRangeChecked() throws {
        var rng = Fuzz.random("numbers")
        let dir = Hostile.folder("numbers")
        defer { try? FileManager.default.removeItem(at: dir) }
        let graph = dir.appendingPathComponent("g.yaml")
        try Hostile.write(Self.noiseGraph, graph)
        for i in 0..<(Fuzz.iterations * 3) {
            let param = rng.pick(["seed", "size", "scale", "flag"]), text = rng.pick(Self.numberTexts)
            let r = try Hostile.run(["run", graph.path, "--quiet", "--cache", "off", "--set", "out=out/\(i).safetensors",
                                     "--set", "\(param)=\(text)"], in: dir)
            Hostile.expect(r, allowed: [0, 2], mentions: ["--set \(param)=", "node 'noise'"])
            // The same text in a params file is read the same way (issue #23: one conversion).
            let params = dir.appendingPathComponent("p\(i).yaml")
            try Hostile.write("\(param): \(text)\n", params)
            let p = try Hostile.run(["validate", graph.path, "--params", params.path], in: dir)
            Hostile.expect(p, allowed: [0, 2])
            if !["[1]", "", " ", "~", "1,5"].contains(text) {
                #expect((r.status == 0) == (p.status == 0), "--set \(param)=\(text) -> \(r.status), params file -> \(p.status)")
            }
        }
        let sizes = ["0", "1", "512M", "4G", "1.5GiB", "1e30G", "9e18B", "9223372036854775807", "1EB", "-1G", "nan",
                     "inf", "0x10", "1TiB", "1048577TiB", " 2G", "G", ".", "1..2G"]
        for _ in 0..<(Fuzz.iterations * 2) {
            let size = rng.pick(sizes)
            let runs: [HostileRun] = [
                try Hostile.run(["run", graph.path, "--quiet", "--set", "out=out/s.safetensors", "--cache-memory", size], in: dir),
                try Hostile.run(["run", graph.path, "--quiet", "--set", "out=out/s.safetensors", "--cache-max", size], in: dir),
                try Hostile.run(["run", graph.path, "--quiet", "--set", "out=out/s.safetensors"], in: dir,
                                environment: ["SANAGRAPH_CACHE_MAX": size]),
                try Hostile.run(["cache", "gc", "--max", size, "--cache-dir", dir.appendingPathComponent("cache").path], in: dir),
                try Hostile.run(["run", graph.path, "--quiet", "--repeat", size, "--set", "out=out/s.safetensors"], in: dir),
            ]
            let shown = String(size.trimmingCharacters(in: CharacterSet.whitespaces))
            // The message names the value or its option (a value such as -1G reads as an option: "Missing value").
            let options = ["--cache-memory", "--cache-max", "SANAGRAPH_CACHE_MAX", "--max", "--repeat"]
            for (r, option) in zip(runs, options) { Hostile.expect(r, allowed: [0, 2], mentions: [shown, option]) }
        }
    }

    // MARK: paths

    @Test func outputPathsStayWhereTheTemplateSaysAndNameAFile() throws {
        var rng = Fuzz.random("paths")
        let dir = Hostile.folder("paths")
        defer { try? FileManager.default.removeItem(at: dir) }
        let work = dir.appendingPathComponent("work")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        let graph = work.appendingPathComponent("g.yaml")
        try Hostile.write(Self.imageGraph, graph)
        let parts = ["o", "a", "j/jj", ".", "..", "", "/", "//", "{seed}", "{params.label}", "{counter}", "{batch}",
                     "{date}", "{graph}", "{nope}", "{", "}", "x.png", "x", ".hidden", "é", String(repeating: "n", count: 300)]
        let labels = ["../../escape", "..", ".", "/abs", "a/b", ".hidden", "x\u{1}y", String(repeating: "é", count: 200), "ok"]
        for _ in 0..<(Fuzz.iterations * 4) {
            var template = (0..<rng.int(1...4)).map { _ in rng.pick(parts) }.joined(separator: rng.pick(["/", "", "_"]))
            // Absolute templates write where they say; keep the suite inside its folder.
            if template.hasPrefix("/") { template = "o" + template }
            let label = rng.pick(labels)
            let before = Set(Hostile.files(in: work))
            let r = try Hostile.run(["run", graph.path, "--quiet", "--cache", "off", "--set", "input=\(Self.png)",
                                     "--set", "out=\(template)", "--set", "label=\(label)"], in: work)
            Hostile.expect(r, allowed: [0, 2, 3, 6], mentions: ["param 'path'", "path", "out"])
            let new = Set(Hostile.files(in: work)).subtracting(before)
            if r.status == 0 {
                #expect(new.count == 1, "one new file for \(template) / \(label): \(new.sorted())")
            } else {
                #expect(new.isEmpty, "a failed run left \(new.sorted())")
            }
            // A substituted label never makes a hidden file or leaves the working folder.
            for f in new where template.contains("{params.label}") {
                #expect(!f.split(separator: "/").contains { $0.hasPrefix(".") && !template.contains(".hidden") && !template.hasPrefix(".") },
                        "hidden component in \(f) for \(template) / \(label)")
            }
        }
        // Nothing was written outside `work` (templates with .. may write to `dir` itself, as written).
        let outside = Hostile.files(in: dir).filter { !$0.hasPrefix("work/") }
        #expect(outside.allSatisfy { !$0.contains("escape") }, "\(outside)")
    }

    // MARK: PNG

    @Test func corruptPNGsGiveClearErrorsNeverCrashes() throws {
        var rng = Fuzz.random("png")
        let dir = Hostile.folder("png")
        defer { try? FileManager.default.removeItem(at: dir) }
        let graph = dir.appendingPathComponent("g.yaml")
        try Hostile.write(Self.imageGraph, graph)
        let good = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.png)))
        func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
            let body = Array(type.utf8) + data
            return be32(UInt32(data.count)) + body + be32(crc32(body))
        }
        func ihdr(_ w: UInt32, _ h: UInt32, depth: UInt8 = 8, color: UInt8 = 2) -> [UInt8] {
            chunk("IHDR", be32(w) + be32(h) + [depth, color, 0, 0, 0])
        }
        let signature = Array(good.prefix(8))
        let idat = Array(good[33...])  // the rest after IHDR
        for i in 0..<(Fuzz.iterations * 4) {
            var bytes: [UInt8]
            switch rng.int(0...5) {
            case 0:  // bit flips
                bytes = good
                for _ in 0..<rng.int(1...8) { bytes[rng.int(0...(bytes.count - 1))] ^= UInt8(1 << rng.int(0...7)) }
            case 1:  // truncation
                bytes = Array(good.prefix(rng.int(0...(good.count - 1))))
            case 2:  // huge or zero dimensions with valid CRCs
                let dims: [UInt32] = [0, 1, 100_000, 65_535, 0x7fff_ffff, 0xffff_ffff]
                bytes = signature + ihdr(rng.pick(dims), rng.pick(dims))
                bytes += idat
            case 3:  // a chunk declaring more bytes than the file has, or a giant ancillary chunk
                let length: UInt32 = rng.pick([0x7fff_ffff, 0xffff_ffff, 1 << 27])
                bytes = signature + ihdr(4, 4)
                bytes += be32(length) + Array("tEXt".utf8)
                bytes += idat
            case 4:  // many tiny chunks
                bytes = signature + ihdr(4, 4)
                let one = chunk("tEXt", [65, 0, 66])
                for _ in 0..<rng.int(1000...20000) { bytes += one }
                bytes += idat
            default:  // bad colour type / depth
                let depth = UInt8(rng.pick([0, 3, 7, 16, 255])), color = UInt8(rng.pick([1, 5, 7, 255]))
                bytes = signature + ihdr(4, 4, depth: depth, color: color)
                bytes += idat
            }
            let file = dir.appendingPathComponent("c\(i).png")
            try Data(bytes).write(to: file)
            let r = try Hostile.run(["run", graph.path, "--quiet", "--cache", "off", "--set", "input=\(file.path)",
                                     "--set", "out=out/c\(i).png"], in: dir)
            Hostile.expect(r, allowed: [0, 3, 6], mentions: [file.path])
            if r.status != 0 { #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("out/c\(i).png").path)) }
            Hostile.expect(try Hostile.run(["inspect", file.path], in: dir), allowed: [2, 3, 6], mentions: [file.path])
        }
        // Hostile metadata: a valid image whose sanagraph chunk holds huge numbers, wrong types or junk.
        let metas = [#"{"graph_file":"g.yaml","graph_source":"sanagraph: 1\nparams:\n  seed: {type: int, default: 1}\nnodes: {}\n","params":{"seed":1e30},"param_types":{"seed":"int"}}"#,
                     #"{"graph_file":"g.yaml","graph_source":"x","params":{"seed":99999999999999999999999},"param_types":{"seed":"int"},"batch_index":1e300}"#,
                     #"{"graph_file":"g.yaml","graph_source":"x","params":{"a":[1,2]},"node_versions":{"x":1e99}}"#,
                     #"{"graph_file":1,"graph_source":null,"params":{}}"#, "not json", #"{"#, String(repeating: "[", count: 100_000)]
        for (i, meta) in metas.enumerated() {
            var payload: [UInt8] = Array("sanagraph".utf8)
            payload += [0, 0, 0, 0, 0]
            payload += Array(meta.utf8)
            let text = chunk("iTXt", payload)
            let file = dir.appendingPathComponent("m\(i).png")
            var bytes = signature
            bytes += Array(good[8..<33])
            bytes += text
            bytes += idat
            try Data(bytes).write(to: file)
            Hostile.expect(try Hostile.run(["inspect", file.path], in: dir), allowed: [0, 2], mentions: [file.path])
            Hostile.expect(try Hostile.run(["run", "--from", file.path, "--quiet", "--cache", "off"], in: dir),
                           allowed: [2, 3], mentions: [file.path, "g.yaml", "seed", "error"])
        }
    }

    // MARK: model folders

    @Test func corruptModelFoldersAreModelFileErrors() throws {
        var rng = Fuzz.random("models")
        let dir = Hostile.folder("models")
        defer { try? FileManager.default.removeItem(at: dir) }
        // One graph per model kind, each loading only that model.
        let graphs: [(folder: String, yaml: String)] = [
            ("transformer", """
                sanagraph: 1
                nodes:
                  m: {type: dit.load, params: {path: "M"}}
                  noise: {type: latent.noise, inputs: {model: m}, params: {width: 0, height: 0, channels: 16, downscale: 16}}
                  save: {type: tensor.save, inputs: {tensor: noise}, params: {path: out/x.safetensors, name: x}}
                """),
            ("vae", """
                sanagraph: 1
                nodes:
                  m: {type: dcae.load, params: {path: "M"}}
                  noise: {type: latent.noise, inputs: {vae: m}, params: {width: 64, height: 64}}
                  image: {type: dcae.decode, inputs: {vae: m, latent: noise}}
                  save: {type: tensor.save, inputs: {tensor: image}, params: {path: out/x.safetensors, name: x}}
                """),
            ("text_encoder", """
                sanagraph: 1
                nodes:
                  m: {type: text_encoder.load, params: {path: "M"}}
                  c: {type: text.encode, inputs: {encoder: m}, params: {text: "a cat", instruction: none, max_sequence_length: 8}}
                  save: {type: tensor.save, inputs: {tensor: c}, params: {path: out/x.safetensors, name: x}}
                """),
        ]
        let hostileNumbers = ["1099511627776", "1e308", "-1", "0", "1000000", "null", "\"x\"", "[1]", "1.5", "9e18",
                              "[1000000, 1000000]", "[[1000000]]", "{}"]
        for i in 0..<(Fuzz.iterations * 3) {
            let (kind, yaml) = rng.pick(graphs)
            let copy = dir.appendingPathComponent("m\(i)")
            try FileManager.default.createDirectory(at: copy, withIntermediateDirectories: true)
            for sub in ["transformer", "vae", "text_encoder", "tokenizer"] {
                try FileManager.default.copyItem(atPath: Self.model + "/" + sub, toPath: copy.appendingPathComponent(sub).path)
            }
            let folder = copy.appendingPathComponent(kind)
            let config = folder.appendingPathComponent("config.json")
            let weights = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".safetensors") }
                .map { folder.appendingPathComponent($0) }
            var what = ""
            switch rng.int(0...8) {
            case 0, 1:  // a config value replaced by a hostile one
                var json = try String(contentsOf: config, encoding: .utf8)
                let keys = json.split(separator: "\n").compactMap { line -> String? in
                    guard let q = line.firstIndex(of: "\""), let e = line[line.index(after: q)...].firstIndex(of: "\"") else { return nil }
                    return String(line[line.index(after: q)..<e])
                }
                let key = rng.pick(keys), value = rng.pick(hostileNumbers)
                if let range = json.range(of: "\"\(key)\": ") {
                    let end = json[range.upperBound...].firstIndex { $0 == "," || $0 == "\n" } ?? json.endIndex
                    // Lists span lines: replace up to the closing bracket.
                    let close = json[range.upperBound...].hasPrefix("[") ? json[range.upperBound...].firstIndex(of: "]").map { json.index(after: $0) } ?? end : end
                    json.replaceSubrange(range.upperBound..<close, with: value)
                }
                try Hostile.write(json, config)
                what = "config \(key)=\(value)"
            case 2:
                let w = rng.pick(weights)
                let size = try FileManager.default.attributesOfItem(atPath: w.path)[.size] as! Int
                truncate(w.path, off_t(rng.int(0...(size - 1))))
                what = "truncated weights"
            case 3:
                let w = rng.pick(weights)
                try FileManager.default.removeItem(at: w)
                try FileManager.default.createDirectory(at: w, withIntermediateDirectories: true)
                what = "folder in place of weights"
            case 4:
                try FileManager.default.removeItem(at: config)
                try FileManager.default.createSymbolicLink(atPath: config.path, withDestinationPath: config.path)
                what = "config symlink loop"
            case 5:
                let w = rng.pick(weights)
                truncate(w.path, 100 << 30)  // sparse 100 GB: the header says otherwise
                what = "sparse 100 GB weights"
            case 6:
                // NaN in the weights' data (after the header): as garbage float bits.
                let w = rng.pick(weights)
                let handle = try FileHandle(forUpdating: w)
                let size = try handle.seekToEnd()
                try handle.seek(toOffset: size / 2)
                try handle.write(contentsOf: Data(Array(repeating: [0, 0, 0xC0, 0x7F], count: 256).joined()))
                try handle.close()
                what = "NaN weights"
            case 7:
                try FileManager.default.removeItem(at: config)
                mkfifo(config.path, 0o644)
                what = "FIFO config"
            default:
                // A tokenizer that is truncated, or a header that declares a wrong shape.
                let tok = copy.appendingPathComponent("tokenizer/tokenizer.json")
                let data = try Data(contentsOf: tok)
                try data.prefix(rng.int(0...(data.count - 1))).write(to: tok)
                what = "truncated tokenizer"
            }
            let g = dir.appendingPathComponent("g\(i).yaml")
            try Hostile.write(yaml.replacingOccurrences(of: "\"M\"", with: "\"\(folder.path)\""), g)
            let r = try Hostile.run(["run", g.path, "--quiet", "--cache", "off"], in: copy)
            // NaN weights or an unused key may still load (the result is garbage, not a crash); everything else
            // is a model-file (4) or node (3) error naming the folder or file.
            Hostile.expect(r, allowed: [0, 3, 4], mentions: [copy.path, "node '"])
            #expect(r.status != 0 || what.hasPrefix("config") || what == "NaN weights" || what == "truncated tokenizer",
                    "\(what) was accepted: \(r.shown)")
            if r.status != 0 { #expect(!FileManager.default.fileExists(atPath: copy.appendingPathComponent("out/x.safetensors").path)) }
            try? FileManager.default.removeItem(at: copy)
        }
    }

    // MARK: special files

    @Test func fifosDevicesFoldersAndLinkLoopsAsInputsAreRefusedWithoutBlocking() throws {
        let dir = Hostile.folder("special")
        defer { try? FileManager.default.removeItem(at: dir) }
        let fifo = dir.appendingPathComponent("fifo")
        mkfifo(fifo.path, 0o644)
        let loop = dir.appendingPathComponent("loop")
        try FileManager.default.createSymbolicLink(atPath: loop.path, withDestinationPath: loop.path)
        let graph = dir.appendingPathComponent("g.yaml")
        try Hostile.write(Self.imageGraph, graph)
        for path in [fifo.path, loop.path, "/dev/zero", dir.path, "/nonexistent/x"] {
            Hostile.expect(try Hostile.run(["validate", path], in: dir), allowed: [2], mentions: [path])
            Hostile.expect(try Hostile.run(["validate", graph.path, "--params", path], in: dir), allowed: [2], mentions: [path])
            let r = try Hostile.run(["run", graph.path, "--quiet", "--cache", "off", "--set", "input=\(path)"], in: dir)
            Hostile.expect(r, allowed: [3, 6], mentions: [path])
            #expect(!r.stderr.contains("permission"), "\(r.shown)")
            // `inspect` also reads model folders: a folder (or nothing) that is not one is a model-file error (4).
            Hostile.expect(try Hostile.run(["inspect", path], in: dir), allowed: [3, 4, 6], mentions: [path])
        }
    }

    // MARK: size

    @Test func hundredThousandNodeChainsAndCyclesLoadInSeconds() throws {
        let dir = Hostile.folder("big")
        defer { try? FileManager.default.removeItem(at: dir) }
        let n = 100_000
        var chain = ["sanagraph: 1", "nodes:", "  n0: {type: image.load, params: {path: \"\(Self.png)\"}}"]
        for i in 1..<n { chain.append("  n\(i): {type: image.resize, inputs: {image: n\(i - 1)}, params: {scale: 1.0}}") }
        chain.append("  save: {type: image.save, inputs: {image: n\(n - 1)}, params: {path: out/x.png}}")
        let chainFile = dir.appendingPathComponent("chain.yaml")
        try Hostile.write(chain.joined(separator: "\n") + "\n", chainFile)
        var cycle = ["sanagraph: 1", "nodes:"]
        for i in 0..<n { cycle.append("  n\(i): {type: image.resize, inputs: {image: n\((i + n - 1) % n)}, params: {scale: 1.0}}") }
        cycle.append("  save: {type: image.save, inputs: {image: n0}, params: {path: out/x.png}}")
        let cycleFile = dir.appendingPathComponent("cycle.yaml")
        try Hostile.write(cycle.joined(separator: "\n") + "\n", cycleFile)

        let v = try Hostile.run(["validate", chainFile.path], in: dir)
        Hostile.expect(v, allowed: [0])
        let p = try Hostile.run(["plan", chainFile.path, "--cache", "off"], in: dir)
        Hostile.expect(p, allowed: [0])
        let c = try Hostile.run(["validate", cycleFile.path], in: dir)
        Hostile.expect(c, allowed: [2], mentions: ["cycle: n0 -> n1"])
        #expect(c.stderr.utf8.count < 10_000, "the cycle message is \(c.stderr.utf8.count) bytes")
        print("hostile: 100 000-node chain validate \(String(format: "%.2f", v.seconds)) s, plan "
              + "\(String(format: "%.2f", p.seconds)) s, cycle \(String(format: "%.2f", c.seconds)) s (wall, this machine)")
    }

    // MARK: signals, kills, concurrency, full disks

    static func text2img(_ dir: URL, steps: Int = 5) -> [String] {
        ["run", TestSupport.repositoryRoot.appendingPathComponent("Graphs/text2img.yaml").path, "--quiet", "--set", "models=\(Self.model)",
         "--set", "steps=\(steps)", "--set", "output=\(dir.appendingPathComponent("out").path)/{seed}.png",
         "--cache-dir", dir.appendingPathComponent("cache").path]
    }

    @Test func signalsAtRandomMomentsExit130WithNoPartialOutputAndACleanCache() throws {
        var rng = Fuzz.random("signals")
        let dir = Hostile.folder("signals")
        defer { try? FileManager.default.removeItem(at: dir) }
        for i in 0..<Fuzz.iterations {
            let delay = Double(rng.int(0...3000)) / 1000
            let sig = rng.pick([SIGINT, SIGTERM])
            let args = Self.text2img(dir) + ["--set", "seed=\(i)"]
            let r = try Hostile.run(args, in: dir, onStart: { pid in
                DispatchQueue.global().asyncAfter(deadline: .now() + delay) { kill(pid, sig) }
            })
            Hostile.expect(r, allowed: [0, 130])
            let out: String = dir.path + "/out/" + String(i) + ".png"
            if r.status == 130 {
                #expect(r.stderr.contains("interrupt"), "\(r.shown)")
            } else {
                #expect(FileManager.default.fileExists(atPath: out))
            }
            // Never a partial file: whatever exists under the output's name is a whole PNG.
            if let data = FileManager.default.contents(atPath: out) {
                #expect(data.suffix(8) == Data([0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82]), "partial \(out)")
            }
            try Hostile.expectCleanCache(dir.appendingPathComponent("cache").path, in: dir)
        }
        // SIGKILL at a random moment, then the cache is still clean and a re-run works.
        for i in 0..<max(2, Fuzz.iterations / 2) {
            let delay = Double(rng.int(0...3000)) / 1000
            let r = try Hostile.run(Self.text2img(dir) + ["--set", "seed=\(100 + i)"], in: dir, onStart: { pid in
                DispatchQueue.global().asyncAfter(deadline: .now() + delay) { kill(pid, SIGKILL) }
            })
            #expect(r.status == 0 || r.signaled, "\(r.shown)")
            try Hostile.expectCleanCache(dir.appendingPathComponent("cache").path, in: dir)
            Hostile.expect(try Hostile.run(Self.text2img(dir) + ["--set", "seed=\(100 + i)"], in: dir), allowed: [0])
        }
        let visible = Hostile.files(in: dir.appendingPathComponent("out")).filter { !$0.hasPrefix(".") }
        #expect(visible.allSatisfy { $0.hasSuffix(".png") }, "\(visible)")
    }

    @Test func concurrentRunsShareOneCache() throws {
        let dir = Hostile.folder("concurrent")
        defer { try? FileManager.default.removeItem(at: dir) }
        let group = DispatchGroup()
        let results = Mutex<[HostileRun]>([])
        for i in 0..<4 {
            group.enter()
            DispatchQueue.global().async {
                defer { group.leave() }
                if let r = try? Hostile.run(Self.text2img(dir, steps: 3) + ["--set", "seed=\(i % 2)"], in: dir, timeout: 120) {
                    results.withLock { $0.append(r) }
                }
            }
        }
        group.wait()
        let all = results.withLock { $0 }
        #expect(all.count == 4)
        for r in all { Hostile.expect(r, allowed: [0]) }
        try Hostile.expectCleanCache(dir.appendingPathComponent("cache").path, in: dir)
    }

    @Test func aFullDiskForTheOutputIsAnIOErrorAndForTheCacheAWarning() throws {
        let dir = Hostile.folder("full")
        defer { try? FileManager.default.removeItem(at: dir) }
        let graph = dir.appendingPathComponent("g.yaml")
        try Hostile.write(Self.noiseGraph, graph)
        // A 64 KiB tmpfs when this machine lets us mount one (as root), else a file-size limit (ulimit -f), which
        // fails writes past it with EFBIG the same way a full disk fails them with ENOSPC.
        let small = dir.appendingPathComponent("small")
        try FileManager.default.createDirectory(at: small, withIntermediateDirectories: true)
        let mounted = Self.shell("mount -t tmpfs -o size=64k tmpfs '\(small.path)'") == 0
        defer { if mounted { _ = Self.shell("umount '\(small.path)'") } }
        let limit = mounted ? nil : "ulimit -f 64;"
        let out = small.appendingPathComponent("big.safetensors").path
        let r = try Hostile.run(["run", graph.path, "--quiet", "--set", "out=\(out)", "--set", "size=1024",
                                 "--cache", "off"], in: dir, shell: limit)
        Hostile.expect(r, allowed: [6], mentions: [out])
        #expect(Hostile.files(in: small).isEmpty, "partial output: \(Hostile.files(in: small))")
        // The cache on the full disk: a warning, the run's own exit code (0), and nothing corrupt left behind.
        let cache = small.appendingPathComponent("cache").path
        let c = try Hostile.run(["run", graph.path, "--quiet", "--set", "out=\(dir.path)/ok.safetensors", "--set", "size=1024",
                                 "--cache-dir", cache], in: dir, shell: limit)
        Hostile.expect(c, allowed: [0])
        #expect(FileManager.default.fileExists(atPath: "\(dir.path)/ok.safetensors"))
        try Hostile.expectCleanCache(cache, in: dir)
        print("hostile: full disk simulated with \(mounted ? "a 64 KiB tmpfs" : "ulimit -f 64 (RLIMIT_FSIZE)")")
    }

    static func shell(_ command: String) -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", command + " 2>/dev/null"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return -1 }
        p.waitUntilExit()
        return p.terminationStatus
    }
}

private func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff)] }

private func crc32(_ bytes: [UInt8]) -> UInt32 {
    var c: UInt32 = 0xffff_ffff
    for b in bytes {
        c ^= UInt32(b)
        for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
    }
    return c ^ 0xffff_ffff
}
