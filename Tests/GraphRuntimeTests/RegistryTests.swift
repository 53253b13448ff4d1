import GraphRuntime
import Tensors
import Testing
import TestSupport

/// The registry registers packs whole or not at all, and checks socket type declarations; the plugin entry
/// contract refuses mismatched versions before touching the registrar.
@Suite struct RegistryTests {
    struct Mask: CacheableValue, Equatable {
        var bits: [Float]
        func cacheParts() -> ValueParts { ValueParts(tensors: ["": Tensor(shape: [bits.count], values: bits)]) }
        init(bits: [Float]) { self.bits = bits }
        init(cacheParts parts: ValueParts) throws { bits = try parts.tensor("").scalars }
    }

    static let mask = SocketType("test.Mask", storing: Mask.self, doc: "a mask")
    static let otherMask = SocketType("test.Mask", storing: String.self, doc: "another pack's idea of a mask")

    struct MakeMask: Node {
        static let descriptor = NodeDescriptor(typeName: "mask.make", version: 1, summary: "",
                                               outputs: [OutputSpec("mask", RegistryTests.mask)])
        func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
            ["mask": Value(RegistryTests.mask, Mask(bits: [1, 0, 1]))]
        }
    }

    struct UseOtherMask: Node {
        static let descriptor = NodeDescriptor(typeName: "other.use", version: 1, summary: "",
                                               inputs: [InputSpec("m", RegistryTests.otherMask)], hasSideEffects: true)
        func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs { [:] }
    }

    struct SecondNode: Node {
        static let descriptor = NodeDescriptor(typeName: "mask.second", version: 1, summary: "",
                                               inputs: [InputSpec("m", RegistryTests.mask)], hasSideEffects: true)
        func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs { [:] }
    }

    enum MaskPack: NodePack {
        static let name = "Masks"
        static let nodes: [any Node.Type] = [MakeMask.self, SecondNode.self]
        static let socketTypes = [RegistryTests.mask]
    }

    enum UndeclaredPack: NodePack {
        static let name = "Undeclared"
        static let nodes: [any Node.Type] = [MakeMask.self]
    }

    enum OtherPack: NodePack {
        static let name = "Other"
        static let nodes: [any Node.Type] = [UseOtherMask.self]
        static let socketTypes = [RegistryTests.otherMask]
    }

    /// `mask.second` clashes with MaskPack's; `mask.make` alone would fit.
    enum HalfBadPack: NodePack {
        static let name = "HalfBad"
        static let nodes: [any Node.Type] = [SecondNode.self, MakeMask.self]
        static let socketTypes = [RegistryTests.mask]
    }

    @Test func packsRegisterWholeWithTheirSocketTypes() throws {
        var registry = NodeRegistry()
        try registry.register(pack: MaskPack.self, origin: .library(path: "/x/libMasks.so"))
        #expect(registry.typeNames == ["mask.make", "mask.second"])
        #expect(registry.packInfo(of: "mask.make")?.origin == .library(path: "/x/libMasks.so"))
        #expect(registry.socketType(named: "test.Mask")?.isDiskCacheable == true)
        #expect(registry.declarer(ofSocketType: "test.Mask") == "Masks")
        #expect(registry.declarer(ofSocketType: "Latent") == "the core")
    }

    @Test func registrationErrorsNameTheTypeAndThePacks() throws {
        var registry = NodeRegistry()
        #expect(throws: NodeRegistry.RegistrationError.undeclaredSocketType("test.Mask", node: "mask.make",
                                                                            pack: "Undeclared")) {
            try registry.register(pack: UndeclaredPack.self)
        }
        #expect(registry.typeNames.isEmpty && registry.packs.isEmpty)

        try registry.register(pack: MaskPack.self)
        let before = registry.typeNames
        // A pack that would add mask.second again: nothing of it is added.
        #expect(throws: NodeRegistry.RegistrationError.duplicatePack("Masks", existing: "built in")) {
            try registry.register(pack: MaskPack.self)
        }
        #expect(throws: NodeRegistry.RegistrationError.duplicateType("mask.second", packs: ["Masks", "HalfBad"])) {
            try registry.register(pack: HalfBadPack.self)
        }
        #expect(registry.typeNames == before && !registry.hasPack(named: "HalfBad"))
        // Same name, different Swift type.
        #expect(throws: NodeRegistry.RegistrationError.conflictingSocketType(
            "test.Mask", packs: ["Masks", "Other"], swiftTypes: [Self.mask.payloadTypeName, "Swift.String"])) {
            try registry.register(pack: OtherPack.self)
        }
        #expect(!registry.hasPack(named: "Other"))
        let message = "\(NodeRegistry.RegistrationError.conflictingSocketType("test.Mask", packs: ["Masks", "Other"], swiftTypes: ["A", "B"]))"
        #expect(message == "socket type 'test.Mask' is declared by Masks and Other for different Swift types (A vs B); "
                + "namespace pack-specific types, e.g. 'mypack.test.Mask'")
    }

    @Test func aPackOfItsOwnValuesRoundTripsThroughTheCacheCodec() throws {
        let value = Value(Self.mask, Mask(bits: [1, 0, 0.5]))
        let parts = try #require(Self.mask.encodeForCache(value))
        let back = try Self.mask.decodeFromCache(parts)
        #expect(back.payload(as: Mask.self) == Mask(bits: [1, 0, 0.5]) && back.type == Self.mask)
        #expect(Self.mask.admits(Mask(bits: [])) && !Self.mask.admits("a string"))
        // Memory-only types have no codec.
        let handle = SocketType("test.Handle", holding: Int.self)
        #expect(!handle.isDiskCacheable && handle.encodeForCache(Value(handle, 3)) == nil)
    }

    @Test func theEntryPointRefusesAnotherSDKVersionWithoutRegistering() {
        // A host that speaks SDK version 999: the plugin side (this test) must answer "version mismatch" and never
        // call its registration closure.
        var slots = [UInt64](repeating: 0, count: 8)
        slots[0] = 0x5347_504C_5547_3031
        slots[1] = 999
        let compiler = SanaGraphPlugin.compilerVersion
        slots[2] = UInt64(UInt(bitPattern: compiler.utf8Start))
        var called = false
        let status = slots.withUnsafeMutableBytes { raw in
            SanaGraphPlugin.answer(raw.baseAddress!) { _ in called = true }
        }
        #expect(status == SanaGraphPlugin.Status.versionMismatch.rawValue && !called)
        #expect(slots[3] == UInt64(SanaGraphPlugin.sdkVersion))
        // A request without the magic number is not touched.
        var junk = [UInt64](repeating: 7, count: 8)
        let junkStatus = junk.withUnsafeMutableBytes { SanaGraphPlugin.answer($0.baseAddress!) { _ in called = true } }
        #expect(junkStatus == SanaGraphPlugin.Status.badRequest.rawValue && !called && junk[3] == 7)
    }

    @Test func anInProcessPluginRegistersThroughTheSameContract() throws {
        let entry: SanaGraphPlugin.EntryPoint = { request in
            SanaGraphPlugin.answer(request) { $0.add(RegistryTests.MaskPack.self) }
        }
        let answer = SanaGraphPlugin.call(entry)
        #expect(answer.status == .registered && answer.packs.count == 1 && answer.failure == nil)
        #expect(answer.pluginCompiler == "\(SanaGraphPlugin.compilerVersion)")
    }
}
