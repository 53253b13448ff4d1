import SanaGraphKit
import Tensors

/// The Gemma-2 decoder `SanaTextEncoder` runs: `Gemma2Model` on the CPU or `Gemma2ModelCUDA` on an NVIDIA GPU.
/// Inputs and output are host values, so the prompt handling around it is the same for both.
public protocol Gemma2Decoder: AnyObject, Sendable {
    var config: Gemma2Config { get }
    /// Host bytes of weights held (a GPU model: the mapped embedding table only).
    var residentBytes: Int { get }
    /// The precision the linear layers compute at.
    var precision: Precision { get }
    /// What runs the linear layers (for logs).
    var kernel: String { get }
    /// `last_hidden_state` [B, L, hidden] (fp32, after the final norm) for right-padded `inputIds` [B][L] with
    /// `attentionMask` [B][L] (1 = token), positions `0..<L`. `afterLayer` is called after each decoder layer
    /// (progress, cancellation; a GPU model calls it as each layer's work is queued).
    func callAsFunction(inputIds: [[Int]], attentionMask: [[Int]], afterLayer: (Int) throws -> Void) throws -> Tensor
}
