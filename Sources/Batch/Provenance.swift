import SanaGraphKit

/// What an output file records about the run that wrote it (for `image.save`'s PNGs: the `sanagraph` chunk).
/// Resume compares it with what the item would record now.
public struct OutputProvenance: Sendable, Equatable {
    public var graphSource: String
    public var params: [String: ParamValue]
    public var nodeVersions: [String: Int]
    /// Node id -> fingerprint of the files it read.
    public var fingerprints: [String: String]
    /// The output node that wrote the file.
    public var node: String

    public init(graphSource: String, params: [String: ParamValue], nodeVersions: [String: Int],
                fingerprints: [String: String], node: String) {
        self.graphSource = graphSource
        self.params = params
        self.nodeVersions = nodeVersions
        self.fingerprints = fingerprints
        self.node = node
    }

    /// nil when `recorded` describes the run `self` describes; else what differs, for messages.
    ///
    /// File fingerprints are compared without their `inode=` part: another host mounting the same share sees
    /// other device numbers, and a file's path, size and modification time already change when it is replaced.
    public func mismatch(_ recorded: OutputProvenance) -> String? {
        if recorded.node != node { return "it was written by node '\(recorded.node)', not '\(node)'" }
        if recorded.graphSource != graphSource { return "it was written by a different graph text" }
        let names = Set(params.keys).union(recorded.params.keys).sorted()
        let differing = names.filter { params[$0] != recorded.params[$0] }
        if !differing.isEmpty {
            return "its params differ: " + differing.prefix(3).map { name in
                "\(name) \(recorded.params[name].map(\.description) ?? "unset") (now \(params[name].map(\.description) ?? "unset"))"
            }.joined(separator: ", ")
        }
        if recorded.nodeVersions != nodeVersions {
            let types = Set(nodeVersions.keys).union(recorded.nodeVersions.keys).sorted()
                .filter { nodeVersions[$0] != recorded.nodeVersions[$0] }
            return "node versions changed since: " + types.joined(separator: ", ")
        }
        let nodes = Set(fingerprints.keys).union(recorded.fingerprints.keys).sorted().filter {
            fingerprints[$0].map(Self.hostIndependent) != recorded.fingerprints[$0].map(Self.hostIndependent)
        }
        if !nodes.isEmpty { return "the files read by " + nodes.joined(separator: ", ") + " changed since" }
        return nil
    }

    /// A fingerprint without `|inode=dev:ino` parts (FileFingerprint.fast lines).
    static func hostIndependent(_ fingerprint: String) -> String {
        fingerprint.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            guard let r = line.range(of: "|inode=", options: .backwards) else { return String(line) }
            let rest = line[r.upperBound...]
            let end = rest.firstIndex(of: "|") ?? rest.endIndex
            return String(line[..<r.lowerBound] + line[end...])
        }.joined(separator: "\n")
    }
}

/// Reads the provenance an output file carries, or nil when it carries none (not a PNG, `--no-metadata`, written
/// by another tool). The CLI supplies one that reads `image.save`'s PNG chunk.
public typealias ProvenanceReader = @Sendable (_ path: String) -> OutputProvenance?
