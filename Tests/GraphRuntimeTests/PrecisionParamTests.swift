import Foundation
import GraphRuntime
import Synchronization
import Tensors
import Testing

/// The `precision` param shared by the model loaders, and the `node_note` events that report it.
@Suite struct PrecisionParamTests {
    final class Notes: Sendable {
        let all = Mutex<[(String, Bool)]>([])
        func context() -> RunContext {
            RunContext(nodeID: "loader", onNote: { [self] message, warning in all.withLock { $0.append((message, warning)) } })
        }
    }

    @Test("the param is a choice of fp32 and bf16 with fp32 the default")
    func paramSpec() {
        #expect(ParamSpec.precision.name == "precision")
        #expect(ParamSpec.precision.type == .choice(["fp32", "bf16"]))
        #expect(ParamSpec.precision.defaultValue == .string("fp32"))
        #expect(ParamValues([:]).precision() == .fp32)
        #expect(ParamValues(["precision": .string("bf16")]).precision() == .bf16)
    }

    @Test("a loader notes its precision and kernel; a bf16 request that cannot run bf16 warns once and runs fp32")
    func notes() {
        let fp32 = Notes()
        #expect(fp32.context().notePrecision(.fp32) { "kernel A" } == .fp32)
        #expect(fp32.all.withLock { $0.map(\.0) } == ["precision fp32: kernel A"])

        let off = Notes()
        let effective = Kernels.withBF16(.unavailable(reason: "no unit here")) {
            off.context().notePrecision(.bf16) { "kernel B" }
        }
        #expect(effective == .fp32)
        let recorded = off.all.withLock { $0 }
        #expect(recorded.count == 2 && recorded[0].1 && recorded[0].0.contains("no unit here") && !recorded[1].1)
        #expect(recorded[1].0 == "precision fp32: kernel B")

        let emulated = Notes()
        #expect(Kernels.withBF16(.emulated) { emulated.context().notePrecision(.bf16) { "kernel C" } } == .bf16)
        #expect(emulated.all.withLock { $0.map(\.1) } == [false])
    }

    @Test("node_note events carry the node, type, level and message")
    func eventJSON() throws {
        let line = RunEvent.nodeNote(node: "vae", type: "dcae.load", warning: true, message: "m").jsonLine
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String]
        #expect(object == ["event": "node_note", "node": "vae", "type": "dcae.load", "level": "warning", "message": "m"])
        #expect(line.hasPrefix("{\"event\":\"node_note\""))
    }
}
