/// An output node that can name, before it runs, the files it will write.
///
/// Batches use it to refuse a sweep whose items would write the same file, and to skip items whose files
/// already exist with matching provenance (`sanagraph run --sweep`, docs/cluster.md). Nodes need not conform:
/// a batch then learns the files from the node's `Path` outputs after it ran (one path per line).
public protocol PlansOutputFiles: Node {
    /// The files `run` would write with these params during `run` (same order), or nil when they can only be
    /// known while running (a `{counter}` that depends on the folder's contents). A node writing a batch of
    /// B images names the files for B = 1. Throws when the params can't name a file (a bad template).
    func plannedOutputFiles(params: ParamValues, run: RunInfo) throws -> [String]?
}
