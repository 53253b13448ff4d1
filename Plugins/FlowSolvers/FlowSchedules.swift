// Sigma and timestep schedules of the two flow schedulers, computed with the same float64/float32
// operations, in the same order, as diffusers, so the values are bit-identical.

/// `numpy.linspace(start, stop, num)` (endpoint included) exactly as numpy evaluates it in float64.
func numpyLinspace(_ start: Double, _ stop: Double, _ num: Int) -> [Double] {
    guard num > 0 else { return [] }
    let div = num - 1
    let delta = stop - start
    var y = (0..<num).map(Double.init)
    if div > 0 {
        let step = delta / Double(div)
        if step == 0 {
            y = y.map { ($0 / Double(div)) * delta }
        } else {
            y = y.map { $0 * step }
        }
    } else {
        y = y.map { $0 * delta }
    }
    y = y.map { $0 + start }
    if num > 1 { y[num - 1] = stop }
    return y
}

/// The SD3-style time shift `shift·s / (1 + (shift − 1)·s)` in float64, numpy's operation order.
@inline(__always)
func timeShift(_ s: Double, shift: Double) -> Double {
    (shift * s) / (1 + (shift - 1) * s)
}

/// The schedule of `DPMSolverMultistepScheduler(use_flow_sigmas=True, final_sigmas_type="zero")`.
public struct FlowDPMSchedule: Sendable, Equatable {
    /// N + 1 sigmas, descending, the last one 0 (float32 as diffusers stores them).
    public var sigmas: [Float]
    /// N integer timesteps, `int64(σ·num_train_timesteps)` (truncated), given to the model.
    public var timesteps: [Int]

    /// - Parameters:
    ///   - steps: number of inference steps N (≥ 1).
    ///   - shift: `flow_shift`.
    ///   - numTrainTimesteps: `num_train_timesteps` (1000 for SANA).
    public init(steps: Int, shift: Double, numTrainTimesteps: Int = 1000) {
        // alphas = linspace(1, 1/T, N+1); sigmas = 1 - alphas; shift; flip; drop the last (= 0 before shift).
        let alphas = numpyLinspace(1, 1 / Double(numTrainTimesteps), steps + 1)
        let shifted = alphas.map { timeShift(1.0 - $0, shift: shift) }
        let kept = Array(shifted.reversed().dropLast())
        timesteps = kept.map { Int(($0 * Double(numTrainTimesteps)).rounded(.towardZero)) }
        sigmas = kept.map { Float($0) } + [0]
    }
}

/// The schedule of `FlowMatchEulerDiscreteScheduler(shift=shift)` (no dynamic shifting).
public struct FlowEulerSchedule: Sendable, Equatable {
    /// N + 1 sigmas, descending, the last one 0 (float32).
    public var sigmas: [Float]
    /// N float timesteps `σ·num_train_timesteps` (float32, not truncated), given to the model.
    public var timesteps: [Float]

    public init(steps: Int, shift: Double, numTrainTimesteps: Int = 1000) {
        let t = Float(numTrainTimesteps)
        // __init__: sigmas of the training schedule in float32 (torch ops); only the ends are used.
        func trainSigma(_ timestep: Float) -> Float {
            let s = timestep / t
            return (Float(shift) * s) / (1 + Float(shift - 1) * s)
        }
        let sigmaMax = Double(trainSigma(t))
        let sigmaMin = Double(trainSigma(1))
        // set_timesteps: linspace in float64, the shift applied again in float64, then float32.
        let ts = numpyLinspace(sigmaMax * Double(numTrainTimesteps), sigmaMin * Double(numTrainTimesteps), steps)
        let s32 = ts.map { Float(timeShift($0 / Double(numTrainTimesteps), shift: shift)) }
        timesteps = s32.map { $0 * t }
        sigmas = s32 + [0]
    }
}
