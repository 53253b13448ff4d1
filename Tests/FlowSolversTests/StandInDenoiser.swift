import DiffusionModels
import Foundation
import GraphRuntime
import Synchronization
import Tensors

/// A deterministic stand-in for the DiT, defined identically in tools/reference/flow_solvers.py:
///   m_b = mean(text embeddings[b]) (float64, then float32)
///   v   = (A·x + (K·(t/1000))·x) + C·m_b     (float32, this order), A = 0.8, K = 0.3, C = 0.5
/// It exercises the solvers, guidance batching and timestep plumbing until the real Linear DiT exists.
final class StandInDenoiser: DenoiserModel {
    struct Text: PreparedText {
        let means: [Float]
    }

    static let a = Float(0.8)
    static let k = Float(0.3)
    static let c = Float(0.5)

    let inChannels: Int
    let latentSpatialDivisor = 32
    let takesGuidance: Bool
    var residentBytes: Int { 0 }

    private let counters = Mutex<(prepare: Int, predict: Int, timesteps: [Float], batches: [Int])>((0, 0, [], []))

    init(inChannels: Int = 4, takesGuidance: Bool = false) {
        self.inChannels = inChannels
        self.takesGuidance = takesGuidance
    }

    var prepareCalls: Int { counters.withLock { $0.prepare } }
    var predictCalls: Int { counters.withLock { $0.predict } }
    /// The timestep of each predict call (first batch entry).
    var timesteps: [Float] { counters.withLock { $0.timesteps } }
    /// The latent batch of each predict call.
    var batches: [Int] { counters.withLock { $0.batches } }

    func prepare(_ conditioning: Conditioning) throws -> any PreparedText {
        counters.withLock { $0.prepare += 1 }
        let e = conditioning.embeddings
        let (b, per) = (e.shape[0], e.shape[1] * e.shape[2])
        let means: [Float] = e.withUnsafeBufferPointer { p in
            (0..<b).map { i in
                var sum = 0.0
                for j in 0..<per { sum += Double(p[i * per + j]) }
                return Float(sum / Double(per))
            }
        }
        return Text(means: means)
    }

    func predict(latent: Tensor, timestep: Tensor, text: any PreparedText, guidance: Tensor?) throws -> Tensor {
        guard let text = text as? Text else { throw NodeError.failed(node: "", message: "foreign prepared text") }
        let b = latent.shape[0]
        precondition(timestep.shape == [b] && text.means.count == b)
        counters.withLock {
            $0.predict += 1
            $0.timesteps.append(timestep.scalars[0])
            $0.batches.append(b)
        }
        let per = latent.count / b
        var out = Tensor(uninitialized: latent.shape)
        let ts = timestep.scalars
        latent.withUnsafeBufferPointer { x in
            out.withUnsafeMutableBufferPointer { o in
                for i in 0..<b {
                    let kt = Self.k * (ts[i] / 1000)
                    let cm = Self.c * text.means[i]
                    for j in 0..<per {
                        let v = x[i * per + j]
                        o[i * per + j] = (Self.a * v + kt * v) + cm
                    }
                }
            }
        }
        return out
    }
}
