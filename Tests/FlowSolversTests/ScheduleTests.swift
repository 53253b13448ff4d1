import Foundation
import Testing
@testable import FlowSolvers

@Suite("Sigma and timestep schedules")
struct ScheduleTests {
    @Test("DPM-Solver flow sigmas and integer timesteps equal diffusers' for many (steps, shift) pairs")
    func dpmScheduleMatchesDiffusers() throws {
        let cases = try Fixtures.json("schedules.json", as: [Fixtures.Schedule].self)
        #expect(cases.count >= 30)
        for c in cases {
            let s = FlowDPMSchedule(steps: c.steps, shift: c.shift)
            #expect(s.timesteps == c.dpm_timesteps, "steps \(c.steps) shift \(c.shift)")
            #expect(s.sigmas.map(\.bitPattern) == c.dpm_sigmas.map { Float($0).bitPattern },
                    "steps \(c.steps) shift \(c.shift): \(s.sigmas) vs \(c.dpm_sigmas)")
        }
    }

    @Test("Flow-matching Euler sigmas and float timesteps equal diffusers' for many (steps, shift) pairs")
    func eulerScheduleMatchesDiffusers() throws {
        let cases = try Fixtures.json("schedules.json", as: [Fixtures.Schedule].self)
        for c in cases {
            let s = FlowEulerSchedule(steps: c.steps, shift: c.shift)
            #expect(s.timesteps.map(\.bitPattern) == c.euler_timesteps.map { Float($0).bitPattern },
                    "steps \(c.steps) shift \(c.shift)")
            #expect(s.sigmas.map(\.bitPattern) == c.euler_sigmas.map { Float($0).bitPattern },
                    "steps \(c.steps) shift \(c.shift)")
        }
    }

    @Test("SANA's 20-step schedule matches the values in the architecture notes")
    func sanaTwentyStepsReference() {
        let s = FlowDPMSchedule(steps: 20, shift: 3.0)
        #expect(s.timesteps == [999, 982, 963, 944, 922, 899, 874, 847, 817, 785, 749, 710, 666, 617, 562, 499,
                                428, 345, 249, 136])
        #expect(s.sigmas.count == 21 && s.sigmas.last == 0)
        #expect(abs(s.sigmas[0] - 0.999666) < 1e-6)
    }

    @Test("numpy.linspace is reproduced, including one-point and endpoint cases")
    func linspaceMatchesNumpy() {
        #expect(numpyLinspace(1, 0.001, 1) == [1])
        #expect(numpyLinspace(1, 0.001, 2) == [1, 0.001])
        let v = numpyLinspace(0, 1, 5)
        #expect(v == [0, 0.25, 0.5, 0.75, 1])
    }
}
