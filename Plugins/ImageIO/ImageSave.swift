import Foundation
import SanaGraphKit
import Tensors

/// `image.save`: writes each image of a batch as a PNG, atomically, with provenance metadata.
public struct ImageSave: Node {
    public enum Collision: String, CaseIterable, Sendable {
        case fail, overwrite, suffix
    }

    public static let descriptor = NodeDescriptor(
        typeName: "image.save", version: 1,
        summary: "Save images as PNG (8 or 16 bit) with the graph, params and model fingerprints as metadata",
        inputs: [InputSpec("image", .image, doc: "[B, 3, H, W] in [0, 1]")],
        outputs: [OutputSpec("path", .path, doc: "the written file (paths joined by newlines when B > 1)")],
        params: [
            ParamSpec("path", .string, default: .string("output/{graph}_{counter}.png"),
                      doc: "path template: {seed} {date} {time} {graph} {params.NAME} {batch} {counter}"),
            ParamSpec("bits", .int, default: .int(8), min: 8, max: 16, doc: "8 or 16 bits per sample"),
            ParamSpec("collision", .choice(Collision.allCases.map(\.rawValue)), default: .string("suffix"),
                      doc: "when the file exists: fail, overwrite, or suffix (name_1.png, name_2.png, …)"),
        ],
        hasSideEffects: true, diskCacheable: false)

    public init() {}

    public func validate(params: ParamValues) -> [String] {
        var problems: [String] = []
        if case .int(let bits)? = params["bits"], bits != 8 && bits != 16 { problems.append("bits must be 8 or 16, got \(bits)") }
        if case .string(let p)? = params["path"], let problem = PathTemplate(p).syntaxProblem {
            problems.append("param 'path' (template '\(p)'): \(problem)")
        }
        return problems
    }

    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        let image = try inputs.tensor("image")
        guard image.rank == 4, image.shape[1] == 3, image.shape[2] > 0, image.shape[3] > 0 else {
            throw NodeError.invalidInput(node: context.nodeID,
                                         message: "input 'image' must be [B, 3, H, W], got \(image.shape)")
        }
        let collision = Collision(rawValue: params.string("collision")) ?? .suffix
        let paths = try Self.save(image, template: PathTemplate(params.string("path")), bits: params.int("bits"),
                                  collision: collision, context: context)
        return ["path": .path(paths.joined(separator: "\n"))]
    }

    /// Saves every image of `image` [B, 3, H, W]; returns the paths written.
    public static func save(_ image: Tensor, template: PathTemplate, bits: Int, collision: Collision,
                            context: RunContext) throws -> [String] {
        let batch = image.shape[0], height = image.shape[2], width = image.shape[3]
        let perImage = 3 * height * width
        var written: [String] = []
        for b in 0..<batch {
            try context.checkCancelled()
            let path = try template.resolve(run: context.run, batchIndex: b, batchCount: batch)
            var text: [(keyword: String, text: String)] = []
            if let run = context.run, run.writeMetadata {
                text.append((PNGMetadata.keyword, Provenance(run: run, node: context.nodeID, batchIndex: b).json))
            }
            let bytes = try image.withUnsafeBufferPointer { all in
                try PNGCodec.encode(UnsafeBufferPointer(rebasing: all[(b * perImage)..<((b + 1) * perImage)]),
                                    width: width, height: height, bits: bits, text: text, path: path)
            }
            // Encoding a large image takes a while: an interrupt meanwhile leaves no new file.
            try context.checkCancelled()
            written.append(try write(bytes, to: path, collision: collision))
            context.logger.info("saved \(written[written.count - 1])")
        }
        return written
    }

    /// Writes through a temporary file; returns the final path (which differs from `path` with `suffix`).
    static func write(_ bytes: [UInt8], to path: String, collision: Collision) throws -> String {
        let dir = Paths.directory(of: path)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw ImageIOError.unwritable(path: path, reason: "a folder with that name exists")
        }
        if collision == .fail && FileManager.default.fileExists(atPath: path) { throw ImageIOError.exists(path: path) }
        let pending = try ImageFiles.PendingFile(bytes: bytes, directory: dir.isEmpty ? "." : dir, displayPath: path)
        defer { pending.discard() }
        switch collision {
        case .overwrite:
            _ = try pending.commit(to: path, replace: true)
            return path
        case .fail:
            guard try pending.commit(to: path, replace: false) else { throw ImageIOError.exists(path: path) }
            return path
        case .suffix:
            if try pending.commit(to: path, replace: false) { return path }
            for n in 1...100_000 {
                let candidate = PathTemplate.insertBeforeExtension(path, "_\(n)")
                if try pending.commit(to: candidate, replace: false) { return candidate }
            }
            throw ImageIOError.exists(path: path)
        }
    }
}
