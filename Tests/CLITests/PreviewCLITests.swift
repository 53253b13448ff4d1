import Foundation
import Testing
import TestSupport

/// `sanagraph run --preview N` (docs/cli.md#previews).
@Suite struct PreviewCLITests {
    @Test("A preview PNG appears in --preview-dir while sampling, says it is a preview, and is removed when the run is interrupted (exit 130, no output)")
    func previewIsWrittenDuringTheRunAndRemovedOnInterrupt() throws {
        let dir = TestSupport.temporaryDirectory("sanagraph-preview")
        defer { try? FileManager.default.removeItem(at: dir) }
        let previews = dir.appendingPathComponent("previews").path
        let out = dir.appendingPathComponent("final.png").path
        let root = TestSupport.repositoryRoot.path
        let process = try CLI.start([
            "run", "\(root)/Graphs/img2img.yaml", "--json", "--cache", "off", "--preview", "1",
            "--preview-dir", previews, "--set", "models=\(root)/models/sana-shapes",
            "--set", "image=\(root)/Graphs/inputs/shapes.png", "--set", "strength=1", "--set", "steps=200",
            "--set", "output=\(out)"])
        // The preview of step 1 is written before step 2 starts: wait for step 2's progress event.
        var seen = ""
        func sampleSteps() -> Int {
            seen.split(separator: "\n").filter { $0.contains("node_progress") && $0.contains("\"sample\"") }.count
        }
        while sampleSteps() < 2 {
            let chunk = process.stdout.availableData
            if chunk.isEmpty { break }
            seen += String(decoding: chunk, as: UTF8.self)
        }
        let preview = "\(previews)/img2img-sample.preview.png"
        let exists = FileManager.default.fileExists(atPath: preview)
        let bytes = exists ? [UInt8](FileManager.default.contents(atPath: preview) ?? Data()) : []
        // Visible names only: the atomic write's temporary file is hidden (".sanagraph-….tmp") while it is written.
        let visible = ((try? FileManager.default.contentsOfDirectory(atPath: previews)) ?? []).filter { !$0.hasPrefix(".") }
        kill(process.process.processIdentifier, SIGINT)
        _ = process.stdout.readDataToEndOfFile()
        process.process.waitUntilExit()
        #expect(exists, "no preview while sampling: \(seen)")
        #expect(bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]))
        #expect(String(decoding: bytes, as: UTF8.self).contains("a preview, not the output"))
        #expect(visible == ["img2img-sample.preview.png"], "\(visible)")
        #expect(process.process.terminationStatus == 130)
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: previews)) ?? []).isEmpty,
                "the preview (or a temporary file) outlived the run")
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test("A finished run leaves its output and no preview; a sampler without the vae input warns once and the run succeeds")
    func previewsAreRemovedAfterTheRunAndMissingProjectionWarns() throws {
        let dir = TestSupport.temporaryDirectory("sanagraph-preview-done")
        defer { try? FileManager.default.removeItem(at: dir) }
        let previews = dir.appendingPathComponent("previews").path
        let out = dir.appendingPathComponent("final.png").path
        let ok = try PipelineSupport.run(graph: PipelineSupport.graph("img2img"), sets: ["output": out, "steps": "4"],
                                         extra: ["--preview", "1", "--preview-dir", previews],
                                         directory: TestSupport.repositoryRoot)
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(FileManager.default.fileExists(atPath: out))
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: previews)) ?? []).isEmpty)
        #expect(!ok.stderr.contains("preview"), "\(ok.stderr)")

        // text2img.yaml's sampler has no vae input: previews are impossible, said once, and the run goes on.
        let out2 = dir.appendingPathComponent("t2i.png").path
        let warn = try PipelineSupport.run(graph: PipelineSupport.graph("text2img"), sets: ["output": out2, "steps": "3"],
                                           extra: ["--preview", "1", "--preview-dir", previews],
                                           directory: TestSupport.repositoryRoot)
        #expect(warn.status == 0, "\(warn.stderr)")
        #expect(warn.stderr.components(separatedBy: "no --preview pictures").count == 2, "\(warn.stderr)")
        #expect(warn.stderr.contains("'vae' input"))
    }

    @Test("--preview 0 and --preview with a sweep are usage errors (exit 2)")
    func badPreviewArguments() throws {
        let zero = try CLI.run(["run", PipelineSupport.graph("img2img"), "--preview", "0"])
        #expect(zero.status == 2, "\(zero.stderr)")
        #expect(zero.stderr.contains("--preview"))
        let sweep = try CLI.run(["run", PipelineSupport.graph("img2img"), "--preview", "2", "--sweep", "seed=0..1"])
        #expect(sweep.status == 2, "\(sweep.stderr)")
        #expect(sweep.stderr.contains("--preview"))
    }
}
