import Foundation
import Tensors
import Testing
import TestSupport
@testable import FlowSolvers

@Suite("Single scheduler steps against diffusers")
struct StepTests {
    static func scheduler(for c: Fixtures.StepCase) -> any FlowScheduler {
        var config = SchedulerConfig.sana
        if case .string(let t)? = c.over["solver_type"] { config.solverType = t }
        if case .int(let o)? = c.over["solver_order"] { config.solverOrder = o }
        switch c.kind {
        case "dpm": return FlowDPMSolverMultistepScheduler(steps: c.steps, shift: c.shift, config: config)
        default: return FlowMatchEulerScheduler(steps: c.steps, shift: c.shift, config: config)
        }
    }

    @Test("Every step (with multistep history, heun/midpoint, order 1, begin index) equals scheduler.step ≤ 1e-6")
    func stepsMatchDiffusers() throws {
        let cases = try Fixtures.json("steps.json", as: [Fixtures.StepCase].self)
        let file = try Fixtures.tensors("steps.safetensors")
        #expect(cases.count == 9)
        for c in cases {
            var s = Self.scheduler(for: c)
            s.setBeginIndex(c.begin)
            var worst: Float = 0
            for i in 0..<c.count {
                let mo = try file.tensor("\(c.name)/\(i)/model_output")
                let x = try file.tensor("\(c.name)/\(i)/sample")
                let ref = try file.tensor("\(c.name)/\(i)/prev_sample")
                let out = s.step(modelOutput: mo, sample: x)
                worst = max(worst, TestSupport.relativeError(out, ref))
            }
            #expect(s.stepIndex == c.begin + c.count)
            #expect(worst <= 1e-6, "\(c.name): relative error \(worst)")
        }
    }

    @Test("The final DPM step (sigma 0) returns the data prediction x0 = x - sigma*v exactly")
    func finalStepIsDataPrediction() {
        var s = FlowDPMSolverMultistepScheduler(steps: 1, shift: 3.0)
        let x = Tensor(shape: [1, 1, 1, 3], values: [0.5, -1.25, 2])
        let v = Tensor(shape: [1, 1, 1, 3], values: [1, 0.5, -0.75])
        let out = s.step(modelOutput: v, sample: x)
        let sigma = s.sigmas[0]
        #expect(out.scalars == [0.5 - sigma * 1, -1.25 - sigma * 0.5, 2 - sigma * -0.75])
    }
}
