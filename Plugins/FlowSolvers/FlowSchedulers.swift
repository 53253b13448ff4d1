import Foundation
import Tensors

// The two schedulers' `step` functions, each a transcription of its diffusers counterpart with the same
// float32 operations in the same order (so results agree with `scheduler.step` to rounding of exp/log).

/// A flow-matching scheduler: a sigma schedule plus an update rule driven by velocity predictions.
/// Like diffusers' schedulers it keeps an internal step counter (and, for multistep solvers, history).
public protocol FlowScheduler: Sendable {
    /// N + 1 sigmas, descending to 0.
    var sigmas: [Float] { get }
    /// Number of steps N of the full schedule.
    var stepCount: Int { get }
    /// The timestep value the denoiser receives at schedule index `index` (before its own timestep_scale).
    func modelTimestep(at index: Int) -> Float
    /// Starts stepping at schedule index `index` (img2img), like diffusers' `set_begin_index`.
    mutating func setBeginIndex(_ index: Int)
    /// The index of the next step.
    var stepIndex: Int { get }
    /// One update: `sample` at σ[stepIndex] with velocity `modelOutput` → sample at σ[stepIndex + 1].
    mutating func step(modelOutput: Tensor, sample: Tensor) -> Tensor
}

/// `DPMSolverMultistepScheduler` as SANA configures it: DPM-Solver++ (order 1 or 2, midpoint or heun)
/// on shifted flow sigmas, `prediction_type="flow_prediction"`, `final_sigmas_type="zero"`.
public struct FlowDPMSolverMultistepScheduler: FlowScheduler {
    public let schedule: FlowDPMSchedule
    public let config: SchedulerConfig
    public private(set) var stepIndex: Int = 0
    /// Data predictions x0 of the last `solverOrder` steps (oldest first), as diffusers' `model_outputs`.
    private var modelOutputs: [Tensor?]
    private var lowerOrderNums = 0

    public init(steps: Int, shift: Double, config: SchedulerConfig = .sana) {
        self.config = config
        schedule = FlowDPMSchedule(steps: steps, shift: shift, numTrainTimesteps: config.numTrainTimesteps)
        modelOutputs = Array(repeating: nil, count: config.solverOrder)
    }

    public var sigmas: [Float] { schedule.sigmas }
    public var stepCount: Int { schedule.timesteps.count }
    public var timesteps: [Int] { schedule.timesteps }

    public func modelTimestep(at index: Int) -> Float { Float(schedule.timesteps[index]) }

    public mutating func setBeginIndex(_ index: Int) { stepIndex = index }

    public mutating func step(modelOutput: Tensor, sample: Tensor) -> Tensor {
        precondition(stepIndex < stepCount, "DPM-Solver stepped past its schedule")
        precondition(modelOutput.shape == sample.shape, "model output \(modelOutput.shape) != sample \(sample.shape)")
        let n = stepCount
        // With final sigma 0 the last step is always first order (x_N = x0); lower_order_final only adds
        // something for solver order 3, which is not implemented.
        let lowerOrderFinal = stepIndex == n - 1
        // convert_model_output (flow_prediction): x0 = x - σ·v
        let x0 = Elementwise.axpyNeg(sample, scale: schedule.sigmas[stepIndex], modelOutput)
        for i in 0..<(config.solverOrder - 1) { modelOutputs[i] = modelOutputs[i + 1] }
        modelOutputs[config.solverOrder - 1] = x0

        let prev: Tensor
        if config.solverOrder == 1 || lowerOrderNums < 1 || lowerOrderFinal {
            prev = firstOrderUpdate(x0: x0, sample: sample)
        } else {
            // modelOutputs[0] is set: lowerOrderNums >= 1 means a previous step stored it.
            prev = secondOrderUpdate(m0: x0, m1: modelOutputs[0] ?? x0, sample: sample)
        }
        if lowerOrderNums < config.solverOrder { lowerOrderNums += 1 }
        stepIndex += 1
        return prev
    }

    /// α, σ and λ = log α − log σ of a flow sigma, in float32 as diffusers computes them. At σ = 0 this gives
    /// λ = +∞, e^{−h} = 0 and so x_t = x0 exactly, as in diffusers (IEEE arithmetic, no special case needed).
    @inline(__always)
    private func alphaSigmaLambda(_ sigma: Float) -> (alpha: Float, sigma: Float, lambda: Float) {
        let alpha = 1 - sigma
        return (alpha, sigma, log(alpha) - log(sigma))
    }

    private func firstOrderUpdate(x0: Tensor, sample: Tensor) -> Tensor {
        let t = alphaSigmaLambda(schedule.sigmas[stepIndex + 1])
        let s = alphaSigmaLambda(schedule.sigmas[stepIndex])
        let h = t.lambda - s.lambda
        // x_t = (σ_t/σ_s)·x − (α_t·(e^{−h} − 1))·x0
        let a = t.sigma / s.sigma
        let b = t.alpha * (exp(-h) - 1.0)
        return Elementwise.combine(sample, a, x0, b)
    }

    private func secondOrderUpdate(m0: Tensor, m1: Tensor, sample: Tensor) -> Tensor {
        let t = alphaSigmaLambda(schedule.sigmas[stepIndex + 1])
        let s0 = alphaSigmaLambda(schedule.sigmas[stepIndex])
        let s1 = alphaSigmaLambda(schedule.sigmas[stepIndex - 1])
        let h = t.lambda - s0.lambda
        let h0 = s0.lambda - s1.lambda
        let r0 = h0 / h
        // D1 = (1/r0)·(m0 − m1)
        let d1 = Elementwise.scaledDifference(m0, m1, scale: 1.0 / r0)
        let a = t.sigma / s0.sigma
        let b = t.alpha * (exp(-h) - 1.0)
        if config.solverType == "heun" {
            // x_t = (σ_t/σ_s0)·x − (α_t(e^{−h} − 1))·D0 + (α_t((e^{−h} − 1)/h + 1))·D1
            let c = t.alpha * ((exp(-h) - 1.0) / h + 1.0)
            return Elementwise.combine(sample, a, m0, b, plus: d1, c)
        }
        // midpoint: x_t = (σ_t/σ_s0)·x − (α_t(e^{−h} − 1))·D0 − 0.5·(α_t(e^{−h} − 1))·D1
        return Elementwise.combine(sample, a, m0, b, minus: d1, 0.5 * b)
    }
}

/// `FlowMatchEulerDiscreteScheduler(shift=…)`: x_{i+1} = x_i + (σ_{i+1} − σ_i)·v_i.
public struct FlowMatchEulerScheduler: FlowScheduler {
    public let schedule: FlowEulerSchedule
    public private(set) var stepIndex: Int = 0

    public init(steps: Int, shift: Double, config: SchedulerConfig = .sana) {
        schedule = FlowEulerSchedule(steps: steps, shift: shift, numTrainTimesteps: config.numTrainTimesteps)
    }

    public var sigmas: [Float] { schedule.sigmas }
    public var stepCount: Int { schedule.timesteps.count }
    public var timesteps: [Float] { schedule.timesteps }

    public func modelTimestep(at index: Int) -> Float { schedule.timesteps[index] }

    public mutating func setBeginIndex(_ index: Int) { stepIndex = index }

    public mutating func step(modelOutput: Tensor, sample: Tensor) -> Tensor {
        precondition(stepIndex < stepCount, "Euler stepped past its schedule")
        precondition(modelOutput.shape == sample.shape, "model output \(modelOutput.shape) != sample \(sample.shape)")
        let dt = schedule.sigmas[stepIndex + 1] - schedule.sigmas[stepIndex]
        let out = Elementwise.axpy(sample, scale: dt, modelOutput)
        stepIndex += 1
        return out
    }
}

/// Element-wise fp32 kernels, each rounding after every operation in the order torch evaluates the
/// corresponding diffusers expression.
enum Elementwise {
    /// x + s·y
    static func axpy(_ x: Tensor, scale s: Float, _ y: Tensor) -> Tensor {
        map2(x, y) { a, b in a + s * b }
    }

    /// x − s·y
    static func axpyNeg(_ x: Tensor, scale s: Float, _ y: Tensor) -> Tensor {
        map2(x, y) { a, b in a - s * b }
    }

    /// s·(x − y)
    static func scaledDifference(_ x: Tensor, _ y: Tensor, scale s: Float) -> Tensor {
        map2(x, y) { a, b in s * (a - b) }
    }

    /// a·x − b·y
    static func combine(_ x: Tensor, _ a: Float, _ y: Tensor, _ b: Float) -> Tensor {
        map2(x, y) { p, q in a * p - b * q }
    }

    /// (a·x − b·y) − c·z
    static func combine(_ x: Tensor, _ a: Float, _ y: Tensor, _ b: Float, minus z: Tensor, _ c: Float) -> Tensor {
        map3(x, y, z) { p, q, r in (a * p - b * q) - c * r }
    }

    /// (a·x − b·y) + c·z
    static func combine(_ x: Tensor, _ a: Float, _ y: Tensor, _ b: Float, plus z: Tensor, _ c: Float) -> Tensor {
        map3(x, y, z) { p, q, r in (a * p - b * q) + c * r }
    }

    @inline(__always)
    static func map2(_ x: Tensor, _ y: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        var out = Tensor(uninitialized: x.shape)
        x.withUnsafeBufferPointer { px in
            y.withUnsafeBufferPointer { py in
                out.withUnsafeMutableBufferPointer { po in
                    for i in 0..<po.count { po[i] = f(px[i], py[i]) }
                }
            }
        }
        return out
    }

    @inline(__always)
    static func map3(_ x: Tensor, _ y: Tensor, _ z: Tensor, _ f: (Float, Float, Float) -> Float) -> Tensor {
        var out = Tensor(uninitialized: x.shape)
        x.withUnsafeBufferPointer { px in
            y.withUnsafeBufferPointer { py in
                z.withUnsafeBufferPointer { pz in
                    out.withUnsafeMutableBufferPointer { po in
                        for i in 0..<po.count { po[i] = f(px[i], py[i], pz[i]) }
                    }
                }
            }
        }
        return out
    }
}
