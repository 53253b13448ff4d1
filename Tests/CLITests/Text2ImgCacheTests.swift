import Foundation
import Testing
import TestSupport

/// The persistent cache on the real text-to-image graph (issue: a cron job that changes only the seed must not
/// encode the prompts again): two processes share one cache folder.
@Suite struct Text2ImgCacheTests {
    /// `sanagraph run Graphs/text2img.yaml --json` on the tiny pipeline with the given seed and cache arguments.
    func render(seed: Int, output: URL, cache: [String]) throws -> [[String: Any]] {
        var args = ["run", PipelineSupport.graph("text2img"), "--no-metadata", "--json"] + cache
        let sets = ["models": TestSupport.fixture("Pipeline/tiny-sana"), "prompt": "a red circle", "steps": "2",
                    "seed": String(seed), "output": output.path]
        for key in sets.keys.sorted() { args += ["--set", "\(key)=\(sets[key]!)"] }
        let r = try CLI.run(args)
        try #require(r.status == 0, "\(r.stderr)")
        return PipelineSupport.events(r.stdout)
    }

    func events(_ events: [[String: Any]], _ kind: String, node: String) -> [[String: Any]] {
        events.filter { $0["event"] as? String == kind && $0["node"] as? String == node }
    }

    @Test("Seed changed only: a new process reuses both encodings from disk, skips the encoder, draws the cold picture")
    func seedChangeReusesPromptEncodings() throws {
        let dir = TestSupport.temporaryDirectory("sanagraph-t2i-cache")
        defer { try? FileManager.default.removeItem(at: dir) }
        let cache = ["--cache", "rw", "--cache-dir", dir.appendingPathComponent("cache").path]

        let first = try render(seed: 1, output: dir.appendingPathComponent("seed1.png"), cache: cache)
        #expect(events(first, "node_finished", node: "positive").first?["cached"] as? Bool == false)

        let second = try render(seed: 2, output: dir.appendingPathComponent("seed2.png"), cache: cache)
        for node in ["positive", "negative"] {
            let finished = try #require(events(second, "node_finished", node: node).first, "\(node) did not finish")
            #expect(finished["cached"] as? Bool == true, "\(node): \(finished)")
            #expect(finished["cache"] as? String == "disk", "\(node): \(finished)")
        }
        #expect(events(second, "node_started", node: "text_encoder").isEmpty, "the text encoder was loaded")
        #expect(!events(second, "node_skipped", node: "text_encoder").isEmpty)
        #expect(events(second, "node_finished", node: "sample").first?["cached"] as? Bool == false)

        let cold = try render(seed: 2, output: dir.appendingPathComponent("cold.png"), cache: ["--cache", "off"])
        #expect(events(cold, "node_finished", node: "positive").first?["cached"] as? Bool == false)
        let warmPNG = try Data(contentsOf: dir.appendingPathComponent("seed2.png"))
        let coldPNG = try Data(contentsOf: dir.appendingPathComponent("cold.png"))
        #expect(warmPNG == coldPNG, "the picture drawn from cached encodings differs from a cold run's")
    }
}
