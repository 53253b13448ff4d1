import Crypto
import Foundation
import GraphRuntime

/// SHA-256 of files and texts, as lowercase hex.
enum FileDigest {
    /// The file's SHA-256 and size (the engine's streaming hasher); nil if it can't be read.
    static func sha256(path: String) -> (hex: String, bytes: Int)? { FileContentHasher.sha256(path: path) }

    static func sha256(_ text: String) -> String { hex(SHA256.hash(data: Array(text.utf8))) }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        digest.map { String(format: "%02x", $0) }.joined()
    }
}
