import Foundation
import GraphRuntime
@testable import ImageIO
import Testing
import TestSupport

/// Property-based tests of path templates (seeded generator): whatever a substituted value holds, it stays one
/// file name inside the template's folder, visible, without control characters, within the length limits.
@Suite struct PathTemplatePropertyTests {
    static func randomText(_ rng: inout SeededRandom) -> String {
        let pieces = ["/", "..", ".", "\\", "\u{0}", "\u{1}", "\u{7F}", "\n", "é", "\u{1F600}", "a", "Z", "0", " ", "{", "}",
                      "~", "-", "_", "\u{202E}", "%2F"]
        return (0..<rng.int(0...60)).map { _ in rng.pick(pieces) }.joined()
    }

    @Test func substitutedValuesStayOneVisibleFileName() throws {
        var rng = SeededRandom(seed: 2304)
        for _ in 0..<500 {
            let label = Self.randomText(&rng)
            let run = RunInfo(graphFile: "g.yaml", graphSource: "", params: ["label": .string(label), "seed": .int(1)])
            let folder = rng.pick(["out", "a/b", "", "../up", "/tmp/x"])
            let template = PathTemplate((folder.isEmpty ? "" : folder + "/") + "{params.label}")
            let path: String
            do { path = try template.resolve(run: run, batchIndex: 0, batchCount: 1) } catch {
                // Only a value that leaves no file name at all may be refused.
                #expect(PathTemplate.sanitize(label).isEmpty, "\(label.debugDescription): \(error)")
                continue
            }
            #expect(Paths.directory(of: path) == folder, "\(label.debugDescription) -> \(path)")
            let name = Paths.fileName(of: path)
            #expect(!name.hasPrefix("."), "hidden file \(name.debugDescription)")
            #expect(!name.unicodeScalars.contains { $0.value < 32 || $0.value == 127 || $0 == "/" || $0 == "\\" })
            #expect(name.utf8.count <= 104, "\(name.utf8.count) bytes")
        }
    }

    @Test func renderedPathsNameAFileOrAreRefused() {
        var rng = SeededRandom(seed: 2305)
        let parts = ["o", "a", "j/jj", ".", "..", "", "/", "{seed}", "{counter}", "{batch}", "x.png", "x", ".hidden", "é",
                     "{", "}", "{nope}", String(repeating: "n", count: 300)]
        let run = RunInfo(graphFile: "g.yaml", graphSource: "", params: ["seed": .int(7)])
        for _ in 0..<500 {
            let template = (0..<rng.int(1...4)).map { _ in rng.pick(parts) }.joined(separator: rng.pick(["/", "", "_"]))
            guard let path = try? PathTemplate(template).resolve(run: run, batchIndex: 0, batchCount: 1) else { continue }
            #expect(!Paths.namesFolder(path), "\(template) -> \(path)")
            #expect(!path.utf8.contains(0))
            #expect(path.split(separator: "/").allSatisfy { $0.utf8.count <= 255 }, "\(template) -> \(path)")
            #expect(Paths.fileExtension(of: path) != nil, "\(template) -> \(path)")
        }
    }

    @Test func pathHelpersAgreeWithTheirDefinitions() {
        #expect(Paths.directory(of: "a/x.png") == "a")
        #expect(Paths.directory(of: "x.png") == "")
        #expect(Paths.directory(of: "/x") == "/")
        #expect(Paths.directory(of: "c/d") == "c")
        #expect(Paths.fileName(of: "j/jj/x.png") == "x.png")
        #expect(Paths.namesFolder(".") && Paths.namesFolder("a/..") && Paths.namesFolder("a/") && !Paths.namesFolder("a/b"))
        #expect(Paths.join("", "x") == "x" && Paths.join("a", "x") == "a/x" && Paths.join("/", "x") == "/x")
        var rng = SeededRandom(seed: 2306)
        for _ in 0..<300 {
            let comps = (0..<rng.int(1...5)).map { _ in rng.pick(["a", "bb", "é", "x.png", "y.tar.gz", "_"]) }
            let path = comps.joined(separator: "/")
            #expect(Paths.join(Paths.directory(of: path), Paths.fileName(of: path)) == path)
        }
    }
}
