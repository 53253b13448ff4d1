import Foundation
import Testing
@testable import Tensors

/// The kernel choices are functions of CPU features and settings: checked here for CPUs this machine is not.
@Suite("Kernel selection by CPU features")
struct KernelSelectionTests {
    /// This CPU with every SIMD feature switched off, then the named ones on.
    static func cpu(_ features: Set<String>) -> CPUFeatures {
        var c = CPUFeatures.host
        c.avx2 = features.contains("avx2"); c.fma = features.contains("fma")
        c.avx512f = features.contains("avx512f"); c.avx512bw = features.contains("avx512bw")
        c.avx512dq = features.contains("avx512dq"); c.avx512vl = features.contains("avx512vl")
        c.avx512BF16 = features.contains("avx512_bf16"); c.amxTile = features.contains("amx_tile")
        c.amxBF16 = features.contains("amx_bf16")
        c.flags = features.sorted()
        return c
    }

    static let avx512: Set<String> = ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl"]
    static let sapphireRapidsLike = avx512.union(["avx512_bf16", "amx_tile", "amx_bf16"])
    static let zen4Like = avx512.union(["avx512_bf16"])

    @Test("OpenBLAS core from features: the newest kernel set the CPU can run, whatever its model number")
    func openBLASCoreFromFeatures() {
        #expect(Self.cpu(Self.sapphireRapidsLike).openBLASCore == "Cooperlake")
        #expect(Self.cpu(Self.avx512).openBLASCore == "SkylakeX")
        #expect(Self.cpu(["sse4_2", "avx", "avx2", "fma"]).openBLASCore == "Haswell")
        #expect(Self.cpu(["sse4_2", "avx"]).openBLASCore == "Sandybridge")
        #expect(Self.cpu(["sse4_2"]).openBLASCore == "Nehalem")
        #expect(Self.cpu([]).openBLASCore == "Prescott")
        // AVX-512F alone (no BW/DQ/VL, e.g. Xeon Phi) is not enough for the SkylakeX kernels.
        #expect(Self.cpu(["sse4_2", "avx", "avx2", "fma", "avx512f"]).openBLASCore == "Haswell")
    }

    @Test("vector code of the C kernels: the widest the CPU runs, narrower on request, portable in generic mode")
    func vectorISAFromFeatures() {
        typealias V = KernelSelection.VectorISA
        #expect(V.best(Self.cpu(Self.avx512), generic: false, env: [:]) == .avx512)
        #expect(V.best(Self.cpu(["sse4_2", "avx", "avx2", "fma"]), generic: false, env: [:]) == .avx2)
        #expect(V.best(Self.cpu(["sse4_2", "avx", "avx2"]), generic: false, env: [:]) == .portable)  // AVX2 without FMA
        // AVX-512F alone (no BW/DQ/VL) runs the AVX2 code.
        #expect(V.best(Self.cpu(["sse4_2", "avx", "avx2", "fma", "avx512f"]), generic: false, env: [:]) == .avx2)
        #expect(V.best(Self.cpu(Self.avx512), generic: true, env: [:]) == .portable)
        #expect(V.best(Self.cpu(Self.avx512), generic: false, env: ["SANAGRAPH_VECTOR": "avx2"]) == .avx2)
        #expect(V.best(Self.cpu(Self.avx512), generic: false, env: ["SANAGRAPH_VECTOR": "portable"]) == .portable)
        // Never wider than the CPU has.
        #expect(V.best(Self.cpu(["sse4_2", "avx", "avx2", "fma"]), generic: false, env: ["SANAGRAPH_VECTOR": "avx512"]) == .avx2)
    }

    func bf16(_ features: Set<String>, env: [String: String] = [:], generic: Bool = false, isa: String? = "avx512_core_amx",
              permission: Bool? = true) -> BF16Path {
        KernelSelection.chooseBF16(env: env, cpu: Self.cpu(features), generic: generic, oneDNNISA: isa,
                                   oneDNNProblem: isa == nil ? "not installed" : nil,
                                   amxPermission: features.contains("amx_tile") ? permission : nil)
    }

    @Test("bf16 runs natively on AMX or AVX512_BF16, else fp32 with a reason; SANAGRAPH_BF16 and generic mode override")
    func bf16Policy() {
        #expect(bf16(Self.sapphireRapidsLike) == .native(isa: "avx512_core_amx"))
        #expect(bf16(Self.zen4Like, isa: "avx512_core_bf16") == .native(isa: "avx512_core_bf16"))
        // AMX refused by the kernel: AVX512_BF16 still serves.
        #expect(bf16(Self.sapphireRapidsLike, isa: "avx512_core_bf16", permission: false) == .native(isa: "avx512_core_bf16"))
        guard case .unavailable(let reason) = bf16(Self.avx512, isa: "avx512_core") else {
            Issue.record("an AVX-512 CPU without bf16 must not run bf16"); return
        }
        #expect(reason.contains("no bf16 unit"))
        guard case .unavailable(let noLibrary) = bf16(Self.zen4Like, isa: nil) else {
            Issue.record("no oneDNN, no native bf16"); return
        }
        #expect(noLibrary.contains("oneDNN"))
        #expect(bf16(Self.sapphireRapidsLike, generic: true, isa: "sse41") == .unavailable(reason: "SANAGRAPH_CPU=generic"))
        #expect(bf16(Self.sapphireRapidsLike, env: ["SANAGRAPH_BF16": "off"]) == .unavailable(reason: "SANAGRAPH_BF16=off"))
        #expect(bf16(Self.sapphireRapidsLike, env: ["SANAGRAPH_BF16": "emulate"]) == .emulated)
        // Forced: the native path where there is one, else the emulation (also in generic mode).
        #expect(bf16(Self.avx512, env: ["SANAGRAPH_BF16": "on"], isa: "avx512_core") == .emulated)
        #expect(bf16(Self.zen4Like, env: ["SANAGRAPH_BF16": "on"], isa: "avx512_core_bf16") == .native(isa: "avx512_core_bf16"))
        #expect(bf16(Self.sapphireRapidsLike, env: ["SANAGRAPH_BF16": "on"], generic: true, isa: "sse41") == .emulated)
    }

    @Test("fp32 linear layers: oneDNN when loaded (not in generic mode) unless SANAGRAPH_FP32 says otherwise")
    func fp32LinearPolicy() {
        let preferred: KernelSelection.LinearBackend = KernelSelection.preferOneDNNForFP32 ? .oneDNN : .openBLAS
        #expect(KernelSelection.chooseFP32Linear(env: [:], oneDNN: true, generic: false) == preferred)
        #expect(KernelSelection.chooseFP32Linear(env: [:], oneDNN: true, generic: true) == .openBLAS)
        #expect(KernelSelection.chooseFP32Linear(env: [:], oneDNN: false, generic: false) == .openBLAS)
        #expect(KernelSelection.chooseFP32Linear(env: ["SANAGRAPH_FP32": "openblas"], oneDNN: true, generic: false) == .openBLAS)
        #expect(KernelSelection.chooseFP32Linear(env: ["SANAGRAPH_FP32": "onednn"], oneDNN: true, generic: true) == .oneDNN)
        #expect(KernelSelection.chooseFP32Linear(env: ["SANAGRAPH_FP32": "onednn"], oneDNN: false, generic: false) == .openBLAS)
    }

    @Test("bf16 linear layers: SanaGraph's AMX kernel where bf16 runs on usable AMX, unless SANAGRAPH_BF16_LINEAR=onednn")
    func bf16LinearPolicy() {
        let amx = BF16Path.native(isa: "avx512_core_amx")
        let host = Kernels.selection
        let usable = host.cpu.amxBF16 && host.cpu.avx512BF16 && host.amxPermission == true
        #expect(KernelSelection.chooseBF16Linear(env: [:], bf16: amx) == (usable ? .amxTiles : .oneDNN))
        #expect(KernelSelection.chooseBF16Linear(env: ["SANAGRAPH_BF16_LINEAR": "onednn"], bf16: amx) == .oneDNN)
        #expect(KernelSelection.chooseBF16Linear(env: [:], bf16: .native(isa: "avx512_core_bf16")) == .oneDNN)
        #expect(KernelSelection.chooseBF16Linear(env: [:], bf16: .emulated) == .oneDNN)
        #expect(KernelSelection.chooseBF16Linear(env: [:], bf16: .unavailable(reason: "test")) == .oneDNN)
        #expect(host.bf16Linear == KernelSelection.chooseBF16Linear(env: ProcessInfo.processInfo.environment, bf16: host.bf16))
        // The DiT's GLUMBConv in one pass wherever its first GEMM is on the AMX kernel, unless turned off.
        #expect(host.fusedGLUMBConv == (ProcessInfo.processInfo.environment["SANAGRAPH_FUSED_GLUMBCONV"] != "0"))
    }

    @Test("threads: SANAGRAPH_THREADS, else the CPUs this process may use")
    func threadCount() {
        let cpu = CPUFeatures.host
        #expect(KernelSelection.resolveThreads(env: ["SANAGRAPH_THREADS": "3"], cpu: cpu) == (3, "SANAGRAPH_THREADS"))
        let auto = KernelSelection.resolveThreads(env: [:], cpu: cpu)
        #expect(auto.0 >= 1 && auto.0 <= cpu.logicalCPUs)
        #expect(KernelSelection.resolveThreads(env: ["SANAGRAPH_THREADS": "0"], cpu: cpu).0 == auto.0)
    }

    @Test("this machine: OpenBLAS is loaded single-threaded and its core is reported; the report names every part")
    func hostSelection() {
        let s = Kernels.selection
        #expect(!s.openBLASCore.isEmpty)
        #expect(s.threads == Parallel.workerCount)
        let labels = s.report().map(\.0)
        #expect(labels == ["cpu", "features", "mode", "threads", "openblas", "onednn", "vector", "fp32", "bf16"])
        if !s.generic && s.openBLASCoreSource == "CPU features" {
            #expect(s.openBLASCore == s.cpu.openBLASCore)
        }
    }

    @Test("the settings made for the libraries while they load are put back: child processes see the user's values")
    func environmentIsRestoredAfterLoading() throws {
        _ = Kernels.selection
        // The environment this process started with (setenv does not change /proc/self/environ).
        let initial = try String(contentsOfFile: "/proc/self/environ", encoding: .utf8).split(separator: "\0")
            .reduce(into: [String: String]()) { env, entry in
                let parts = entry.split(separator: "=", maxSplits: 1)
                if parts.count == 2 { env[String(parts[0])] = String(parts[1]) }
            }
        for name in ["OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "OMP_NUM_THREADS", "OMP_WAIT_POLICY"] {
            #expect(getenv(name).map { String(cString: $0) } == initial[name], "\(name)")
        }
    }
}
