import SanaGraphKit
import Tensors

/// Text conditioning: embeddings [B, L, D] and an attention mask [B, L] of 0/1 floats.
public struct Conditioning: Sendable, CacheableValue, ResidentSize {
    public var embeddings: Tensor
    public var mask: Tensor

    public init(embeddings: Tensor, mask: Tensor) {
        self.embeddings = embeddings
        self.mask = mask
    }

    public var residentBytes: Int { embeddings.byteCount + mask.byteCount }

    public func cacheParts() -> ValueParts { ValueParts(tensors: ["embeddings": embeddings, "mask": mask]) }

    public init(cacheParts parts: ValueParts) throws {
        self.init(embeddings: try parts.tensor("embeddings"), mask: try parts.tensor("mask"))
    }
}
