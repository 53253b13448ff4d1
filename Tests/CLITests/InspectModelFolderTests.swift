import Foundation
import Testing
import TestSupport

/// `sanagraph inspect MODEL_FOLDER` on the tiny family pipelines (Tests/Fixtures/Pipeline).
@Suite struct InspectModelFolderTests {
    static func inspect(_ folder: String, json: Bool = true) throws -> (CLI.Result, [String: Any]) {
        let r = try CLI.run(["inspect", TestSupport.fixture("Pipeline/\(folder)")] + (json ? ["--json"] : []))
        let object = json ? (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]) ?? [:]
            : [:]
        return (r, object)
    }

    @Test("A Sprint folder is reported as Sana-Sprint with Graphs/sprint.yaml, its scheduler and the 1024 bins")
    func sprintFolder() throws {
        let (r, o) = try Self.inspect("tiny-sprint")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(o["family"] as? String == "Sana-Sprint")
        #expect(o["graph"] as? String == "Graphs/sprint.yaml")
        #expect(o["scheduler"] as? String == "SCMScheduler")
        #expect(o["bin_table"] as? String == "ASPECT_RATIO_1024_BIN")
        let components = o["components"] as? [[String: Any]] ?? []
        #expect(components.map { $0["name"] as? String } == ["transformer", "text_encoder", "vae"])
        for c in components {
            let params = c["parameters"] as? Int ?? 0
            #expect(params > 0 && c["fp32_bytes"] as? Int ?? 0 >= 4 * params / 2)
            #expect((c["dtypes"] as? [String: Int])?["F16"] == params, "the fixtures are stored in F16")
        }
        #expect((o["command"] as? String ?? "").contains("Graphs/sprint.yaml"))
    }

    @Test("SANA 1.5 and 4K folders go to text2img.yaml; the 4K one with the 4096 bins and flow_shift 6")
    func sanaFolders() throws {
        let (r15, o15) = try Self.inspect("tiny-sana15")
        #expect(r15.status == 0)
        #expect(o15["family"] as? String == "SANA 1.5" && o15["graph"] as? String == "Graphs/text2img.yaml")
        let (r4k, o4k) = try Self.inspect("tiny-sana4k")
        #expect(r4k.status == 0)
        #expect(o4k["family"] as? String == "SANA 2K/4K")
        #expect(o4k["bin_table"] as? String == "ASPECT_RATIO_4096_BIN")
        #expect(o4k["flow_shift"] as? Double == 6)
        let (text, _) = try Self.inspect("tiny-sana4k", json: false)
        #expect(text.stdout.contains("family:") && text.stdout.contains("expected memory"), "\(text.stdout)")
    }

    @Test("A folder without transformer/config.json is a model-file error (exit 4) naming it")
    func notAModelFolder() throws {
        let dir = TestSupport.temporaryDirectory("sanagraph-inspect")
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try CLI.run(["inspect", dir.path])
        #expect(r.status == 4)
        #expect(r.stderr.contains(dir.path) && r.stderr.contains("transformer/config.json"), "\(r.stderr)")
    }
}
