import SanaGraphKit

/// Failures reading or writing images. Every message names the file and says what to do.
public enum ImageIOError: CategorizedError, Equatable {
    /// The file does not exist or cannot be opened (exit 6).
    case unreadable(path: String, reason: String)
    /// The file is not a PNG, is truncated, or its chunks are damaged (exit 3).
    case corrupt(path: String, reason: String)
    /// The header declares a size that is zero or above the decompression-bomb limit (exit 3).
    case badDimensions(path: String, width: Int, height: Int, limit: Int)
    /// The output file or its folder cannot be written (exit 6).
    case unwritable(path: String, reason: String)
    /// The output exists and the collision policy is `fail` (exit 6).
    case exists(path: String)
    /// A path template is invalid or names something the run does not have (exit 3).
    case badTemplate(template: String, reason: String)
    /// The PNG carries no SanaGraph metadata, or it is unreadable (exit 2: there is no graph to run).
    case noMetadata(path: String, reason: String)

    public var category: ErrorCategory {
        switch self {
        case .unreadable, .unwritable, .exists: return .io
        case .corrupt, .badDimensions, .badTemplate: return .nodeFailed
        case .noMetadata: return .invalidGraph
        }
    }

    public var description: String {
        switch self {
        case .unreadable(let p, let r): return "\(p): cannot read image: \(r)"
        case .corrupt(let p, let r): return "\(p): not a readable PNG: \(r)"
        case .badDimensions(let p, let w, let h, let limit):
            if w == 0 || h == 0 { return "\(p): PNG header declares an empty image (\(w)x\(h))" }
            return "\(p): image is \(w)x\(h) = \(w * h) pixels, above the limit of \(limit) "
                + "(a guard against decompression bombs); raise the node's max_pixels param if the file is trusted"
        case .unwritable(let p, let r): return "\(p): cannot write image: \(r)"
        case .exists(let p):
            return "\(p): file already exists; set the saver's collision param to 'overwrite' or 'suffix', "
                + "or use {counter} in the path"
        case .badTemplate(let t, let r): return "path template '\(t)': \(r)"
        case .noMetadata(let p, let r): return "\(p): no SanaGraph metadata: \(r)"
        }
    }
}
