import Foundation
import Safetensors
import Tensors
import TestSupport

/// Decoded JSON fixtures written by tools/reference/flow_solvers.py.
enum Fixtures {
    struct Schedule: Decodable {
        let steps: Int
        let shift: Double
        let dpm_sigmas: [Double]
        let dpm_timesteps: [Int]
        let euler_sigmas: [Double]
        let euler_timesteps: [Double]
    }

    struct StepCase: Decodable {
        let name: String
        let kind: String
        let steps: Int
        let shift: Double
        let begin: Int
        let count: Int
        let over: [String: OverrideValue]
    }

    enum OverrideValue: Decodable {
        case int(Int)
        case string(String)
        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let i = try? c.decode(Int.self) { self = .int(i) } else { self = .string(try c.decode(String.self)) }
        }
    }

    struct LoopCase: Decodable {
        let name: String
        let kind: String
        let steps: Int
        let shift: Double
        let guidance: Double
        let denoise: Double
        let img2img: Bool
        let model_calls: Int
    }

    struct NoiseCase: Decodable {
        let name: String
        let shape: [Int]
        let seed: Int
    }

    static func json<T: Decodable>(_ name: String, as type: T.Type) throws -> T {
        let data = try Data(contentsOf: URL(fileURLWithPath: TestSupport.fixture("FlowSolvers/" + name)))
        return try JSONDecoder().decode(T.self, from: data)
    }

    static func tensors(_ name: String) throws -> SafetensorsFile {
        try TestSupport.loadFixture("FlowSolvers/" + name)
    }
}
