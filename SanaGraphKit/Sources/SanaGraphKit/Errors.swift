/// Categories of failure, each with a documented process exit code (see docs/cli.md).
public enum ErrorCategory: Sendable, Equatable {
    /// The graph file or its params are invalid. Exit 2.
    case invalidGraph
    /// A node failed while running. Exit 3.
    case nodeFailed
    /// A model/weights file is missing or corrupt. Exit 4.
    case modelFile
    /// Another run holds the lock given with `--lock`. Exit 5.
    case lockHeld
    /// Input/output failure outside a node (unwritable output, full disk). Exit 6.
    case io
    /// SIGINT/SIGTERM or cancellation. Exit 130.
    case interrupted

    public var exitCode: Int32 {
        switch self {
        case .invalidGraph: return 2
        case .nodeFailed: return 3
        case .modelFile: return 4
        case .lockHeld: return 5
        case .io: return 6
        case .interrupted: return 130
        }
    }
}

/// An error that knows which exit code it maps to. Errors that don't conform count as `.nodeFailed`
/// when thrown from a node.
public protocol CategorizedError: Error, CustomStringConvertible {
    var category: ErrorCategory { get }
}

/// Errors nodes throw for common situations. Plugins may define their own `CategorizedError`s.
public enum NodeError: CategorizedError, Equatable {
    /// An input has the wrong shape or kind.
    case invalidInput(node: String, message: String)
    /// A param value is unusable at run time.
    case invalidParam(node: String, param: String, message: String)
    /// A model or weights file is missing, unreadable or inconsistent.
    case modelFile(path: String, message: String)
    /// A file could not be read or written.
    case io(path: String, message: String)
    /// The run was cancelled.
    case cancelled
    /// Anything else, with an actionable message.
    case failed(node: String, message: String)

    public var category: ErrorCategory {
        switch self {
        case .invalidInput, .invalidParam, .failed: return .nodeFailed
        case .modelFile: return .modelFile
        case .io: return .io
        case .cancelled: return .interrupted
        }
    }

    public var description: String {
        switch self {
        case .invalidInput(let node, let message): return node.isEmpty ? message : "node '\(node)': \(message)"
        case .invalidParam(let node, let param, let message):
            return "node '\(node)': param '\(param)': \(message)"
        case .modelFile(let path, let message): return "\(path): \(message)"
        case .io(let path, let message): return "\(path): \(message)"
        case .cancelled: return "interrupted"
        case .failed(let node, let message): return node.isEmpty ? message : "node '\(node)': \(message)"
        }
    }
}

extension Error {
    /// The category of any error: its own if categorized, else `.nodeFailed`.
    public var exitCategory: ErrorCategory {
        (self as? any CategorizedError)?.category ?? .nodeFailed
    }
}
