import Foundation
import SanaGraphKit

/// How ImageIO stores a `Provenance` in a PNG: one iTXt chunk with keyword `sanagraph` holding its JSON form, so
/// an image can be inspected (`sanagraph inspect`), re-run (`sanagraph run --from`) and skipped on resume.
public enum PNGMetadata {
    /// The iTXt keyword.
    public static let keyword = "sanagraph"

    /// Reads the provenance of the PNG at `path`.
    /// - Throws: `ImageIOError.unreadable` (missing file), `.corrupt` (not a PNG), `.noMetadata` (no or bad
    ///   `sanagraph` chunk).
    public static func read(path: String) throws -> Provenance {
        try read(pngBytes: ImageFiles.readBytes(path), path: path)
    }

    /// Reads the provenance from PNG bytes; `path` is used in messages.
    public static func read(pngBytes: [UInt8], path: String) throws -> Provenance {
        let chunks = try PNGChunks.parse(pngBytes, path: path)
        switch PNGCodec.text(keyword: keyword, in: chunks) {
        case nil:
            throw ImageIOError.noMetadata(path: path, reason: "the file has no '\(keyword)' text chunk "
                + "(it was not written by SanaGraph, was saved with --no-metadata, or was re-encoded by another tool)")
        case .unreadable(let reason)?:
            throw ImageIOError.noMetadata(path: path, reason: reason)
        case .found(let text)?:
            do { return try Provenance(json: text) } catch {
                throw ImageIOError.noMetadata(path: path, reason: "the '\(keyword)' chunk is not valid metadata JSON: \(error)")
            }
        }
    }
}
