/// A loaded model held in memory (never written to the disk cache). Socket types for models are declared with
/// `SocketType(_:holding:)`.
public protocol LoadedModel: AnyObject, Sendable, ResidentSize {
    /// Approximate bytes of weights held in memory.
    var residentBytes: Int { get }
}
