internal import CKernels
import Foundation

/// Arithmetic precision of a model's GEMMs and convolutions. Activations, norms, softmax and every other
/// kernel stay fp32 either way; `bf16` rounds the operands of the weight GEMMs/convolutions to bfloat16 and
/// accumulates in fp32 (as AMX and AVX512_BF16 do).
public enum Precision: String, Sendable, CaseIterable, Codable {
    case fp32, bf16
}

/// How a precision request becomes arithmetic on this machine (`Kernels.bf16`).
public enum BF16Path: Sendable, Equatable {
    /// oneDNN runs bf16 GEMMs/convolutions natively (`isa` such as "avx512_core_amx" or "avx512_core_bf16").
    case native(isa: String)
    /// Operands rounded to bf16, products summed in fp32 by the fp32 kernels: bf16's accuracy, fp32's speed.
    /// Only when forced (`SANAGRAPH_BF16=on` on a CPU without a bf16 unit, or `SANAGRAPH_BF16=emulate`).
    case emulated
    /// bf16 requests run fp32, for the reason given (said once per load in a warning).
    case unavailable(reason: String)
}

/// The kernel libraries and the choices made for this CPU: loaded once, on first use.
///
/// Before the libraries load, the process environment is set from the CPU's features and SanaGraph's own
/// settings, because OpenBLAS reads `OPENBLAS_CORETYPE` / `OPENBLAS_NUM_THREADS` and libgomp (oneDNN's threads)
/// reads `OMP_NUM_THREADS` when they are loaded — before `main` if they were linked, which is why they are
/// opened with `dlopen` instead:
/// - `OPENBLAS_CORETYPE`: the core for the CPU's features (`CPUFeatures.openBLASCore`) unless the user set one;
///   Prescott with `SANAGRAPH_CPU=generic`.
/// - `OPENBLAS_NUM_THREADS=1`: OpenBLAS never starts threads of its own; SanaGraph splits GEMMs over its own
///   workers (`Parallel`), so the two pools never compete for cores.
/// - `OMP_NUM_THREADS=threads`: oneDNN's OpenMP team, used only from the thread running a node, never from
///   inside a `Parallel` loop.
/// - `OMP_WAIT_POLICY=passive` unless the user set it or `GOMP_SPINCOUNT`: between two oneDNN calls the team
///   sleeps instead of spinning, so it does not take cores from SanaGraph's own workers running the element-wise
///   steps in between (spinning made a bf16 DiT forward 2× slower on a busy 2-core machine).
/// - glibc keeps freed memory below 32 MiB in the heap (`mallopt` M_MMAP_THRESHOLD 32 MiB, M_TRIM_THRESHOLD
///   256 MiB) unless the user tuned malloc (`GLIBC_TUNABLES` / `MALLOC_*_`): otherwise every step's scratch
///   buffers were mapped, zeroed by the kernel and unmapped again (a bf16 DiT forward took ~130 000 page faults).
///
/// Environment: `SANAGRAPH_THREADS` (default: every CPU the process may use, within its cgroup quota),
/// `SANAGRAPH_CPU=generic` (most generic kernels: OpenBLAS Prescott, oneDNN capped at SSE4.1, bf16 off),
/// `SANAGRAPH_BF16=auto|on|off|emulate`, `SANAGRAPH_FP32=auto|openblas|onednn` (which library runs fp32
/// linear layers), `SANAGRAPH_BF16_LINEAR=auto|onednn` (on an AMX CPU: SanaGraph's AMX kernel or oneDNN for bf16 linear layers),
/// `SANAGRAPH_ONEDNN=0` (don't load oneDNN at all).
public enum Kernels {
    /// Sets the thread count before anything runs (the CLI's `--threads`). Later calls are ignored once the
    /// kernels are loaded; returns whether it took effect.
    @discardableResult
    public static func configure(threads: Int) -> Bool {
        requestedThreads.withLock { state in
            guard !state.frozen else { return false }
            state.threads = Swift.max(1, threads)
            return true
        }
    }

    /// The loaded kernel configuration (loads the libraries on first access).
    public static var selection: KernelSelection { KernelSelection.shared }

    /// Worker threads for `Parallel` and oneDNN.
    public static var threads: Int { selection.threads }

    /// What `precision: bf16` runs as here (or inside `withBF16`).
    public static var bf16: BF16Path { bf16Override ?? selection.bf16 }

    /// Runs `body` with bf16 requests taking `path` instead of the machine's choice: tests and benchmarks use
    /// it to run the emulation, or the native path, beside each other in one process. Layers prepared inside
    /// keep the kernel they got.
    public static func withBF16<R>(_ path: BF16Path, _ body: () throws -> R) rethrows -> R {
        try $bf16Override.withValue(path) { try body() }
    }

    @TaskLocal static var bf16Override: BF16Path?

    /// Runs `body` with bf16 linear layers prepared for the AMX tile kernel whatever the machine's choice (the tile
    /// instructions emulated where the CPU has no AMX): tests check that path's accuracy on any CPU.
    public static func withAMXTiles<R>(_ body: () throws -> R) rethrows -> R {
        try $amxTilesOverride.withValue(true) { try body() }
    }

    @TaskLocal static var amxTilesOverride = false

    /// Time spent inside oneDNN's GEMMs and convolutions and the AMX kernel's GEMMs so far (their input/output
    /// conversions included) and the number of those calls: benchmarks take differences around a model call.
    public static func oneDNNTime() -> (seconds: Double, calls: Int) {
        var seconds = 0.0, calls = 0
        sg_onednn_time(&seconds, &calls)
        return (seconds, calls)
    }

    /// The precision a `precision` request actually runs at, with a warning when it cannot be honoured.
    public static func effectivePrecision(_ requested: Precision) -> (Precision, warning: String?) {
        guard requested == .bf16 else { return (.fp32, nil) }
        switch bf16 {
        case .native, .emulated: return (.bf16, nil)
        case .unavailable(let reason): return (.fp32, "precision bf16 runs as fp32 here: \(reason)")
        }
    }

    struct Requested: Sendable { var threads: Int?; var frozen = false }
    static let requestedThreads = Locked(Requested())
}

/// The kernels chosen for this machine (see `Kernels`).
public struct KernelSelection: Sendable {
    public var cpu: CPUFeatures
    /// `SANAGRAPH_CPU=generic` is in effect.
    public var generic: Bool
    public var threads: Int
    /// Where the thread count came from ("--threads", "SANAGRAPH_THREADS", "all CPUs", "cgroup CPU quota").
    public var threadsSource: String
    /// OpenBLAS's own report: `openblas_get_corename()` and `openblas_get_config()`.
    public var openBLASCore: String, openBLASConfig: String
    /// Where the core came from ("CPU features", "OPENBLAS_CORETYPE set by the user", "generic").
    public var openBLASCoreSource: String
    /// oneDNN's version ("2.6.3") and the instruction set its JIT uses, or nil with the reason it is not used.
    public var oneDNNVersion: String?, oneDNNISA: String?, oneDNNProblem: String?
    /// Library running fp32 linear layers and (with bf16) 1×1 / 3×3 convolutions.
    public var fp32Linear: LinearBackend
    public var bf16: BF16Path
    /// Kernel running bf16 linear layers where bf16 is native.
    public var bf16Linear: BF16LinearBackend
    /// AMX tile permission granted by the kernel (nil: the CPU has no AMX).
    public var amxPermission: Bool?
    /// Vector code of SanaGraph's own C kernels (element-wise, attention cores; the Swift code is built for
    /// baseline x86-64, i.e. SSE2): AVX-512 (F/BW/DQ/VL), AVX2 with FMA, or portable C.
    public var vectorISA: VectorISA
    /// Whether runs of DC-AE ResBlocks whose convolutions oneDNN runs channels-last (bf16) keep their activations
    /// channels-last in between, through SanaGraph's AVX-512 kernels (`Ops+ChannelsLast`), instead of oneDNN's
    /// reorders to and from NCHW around each convolution (`SANAGRAPH_CHANNELS_LAST=0`: off, for comparisons).
    public var channelsLast: Bool
    /// Whether the fp32 linear layers of a model that runs them a few times per load (a text encoder,
    /// `WeightReuse.few`) keep a bf16 checkpoint's weights as stored (`WeightKernel.storedBF16`) where oneDNN
    /// cannot pack them from bf16, instead of an fp32 copy (`SANAGRAPH_STORED_WEIGHTS=0`: the copy, for comparisons).
    public var storedWeights: Bool
    /// Whether the DiT's GLUMBConv runs `conv_inverted` → SiLU → depthwise → GLU as one pass where `conv_inverted`
    /// is on the AMX kernel (`Ops.linearSiLUDepthwiseGLU`: the largest tensor of a block never reaches memory; on
    /// Emerald Rapids hosts 29 % off a bf16 DiT forward on a busy one, level on a quiet one, docs/performance.md).
    /// `SANAGRAPH_FUSED_GLUMBCONV=0`: two passes, for comparisons.
    public var fusedGLUMBConv: Bool

    public enum VectorISA: Int32, Sendable {
        case portable = 0, avx2 = 1, avx512 = 2

        /// The widest this CPU runs, or narrower as `SANAGRAPH_VECTOR` (portable | avx2 | avx512) asks; portable
        /// when `generic`.
        static func best(_ cpu: CPUFeatures, generic: Bool, env: [String: String]) -> VectorISA {
            if generic { return .portable }
            let widest: VectorISA = cpu.avx512Core ? .avx512 : cpu.avx2 && cpu.fma ? .avx2 : .portable
            let asked: VectorISA? = switch env["SANAGRAPH_VECTOR"]?.lowercased() {
            case "portable": .portable
            case "avx2": .avx2
            default: nil
            }
            return asked.map { $0.rawValue < widest.rawValue ? $0 : widest } ?? widest
        }

        /// The value the C kernels take (`sg_isa`).
        var c: sg_isa { sg_isa(rawValue: UInt32(rawValue)) }

        public var name: String { ["portable C", "AVX2 + FMA", "AVX-512"][Int(rawValue)] }
    }

    public enum LinearBackend: String, Sendable { case openBLAS = "OpenBLAS", oneDNN = "oneDNN" }
    /// SanaGraph's AMX tile kernel (`amx.c`; on two Emerald Rapids cores 82–119 % of PyTorch's bf16 GEMM and
    /// 1.1–5.7× Debian's oneDNN 2.6, docs/performance.md) or oneDNN.
    public enum BF16LinearBackend: String, Sendable { case amxTiles = "SanaGraph AMX tiles", oneDNN = "oneDNN" }

    static let shared: KernelSelection = load()

    private static func load() -> KernelSelection {
        let env = ProcessInfo.processInfo.environment
        let cpu = CPUFeatures.host
        let generic = env["SANAGRAPH_CPU"]?.lowercased() == "generic"
        let (threads, threadsSource) = resolveThreads(env: env, cpu: cpu)

        // The libraries read these while they load; afterwards the environment is put back as it was, so child
        // processes see the user's settings, not ours.
        let saved = ["OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "OMP_NUM_THREADS", "OMP_WAIT_POLICY"]
            .map { ($0, env[$0]) }
        defer {
            for (name, value) in saved {
                if let value { setenv(name, value, 1) } else { unsetenv(name) }
            }
        }
        retainFreedMemory(env: env)
        // OpenBLAS: single-threaded (our workers split GEMMs), core from CPU features unless the user chose.
        setenv("OPENBLAS_NUM_THREADS", "1", 1)
        let coreSource: String
        if generic {
            setenv("OPENBLAS_CORETYPE", "Prescott", 1)
            coreSource = "generic (SANAGRAPH_CPU=generic)"
        } else if let user = env["OPENBLAS_CORETYPE"], !user.isEmpty {
            coreSource = "OPENBLAS_CORETYPE=\(user) set by the user"
        } else {
            setenv("OPENBLAS_CORETYPE", cpu.openBLASCore, 1)
            coreSource = "CPU features"
        }
        var error = [CChar](repeating: 0, count: 512)
        if sg_openblas_load("libopenblas.so.0", &error, error.count) != 0
            && sg_openblas_load("libopenblas.so", &error, error.count) != 0 {
            fatalError("SanaGraph needs OpenBLAS: \(String(cBuffer: error)) (Debian: apt-get install libopenblas0)")
        }

        // oneDNN: its OpenMP team gets our thread count; generic mode caps its JIT at SSE4.1.
        var oneDNNVersion: String?, oneDNNISA: String?, oneDNNProblem: String?
        var amxPermission: Bool?
        if cpu.amxTile { amxPermission = sg_amx_request_permission() == 1 }
        if env["SANAGRAPH_ONEDNN"] == "0" {
            oneDNNProblem = "disabled (SANAGRAPH_ONEDNN=0)"
        } else {
            setenv("OMP_NUM_THREADS", String(threads), 1)
            if env["OMP_WAIT_POLICY"] == nil && env["GOMP_SPINCOUNT"] == nil { setenv("OMP_WAIT_POLICY", "passive", 1) }
            if sg_dnnl_load("libdnnl.so.2", &error, error.count) == 0 {
                if generic { _ = sg_dnnl_set_max_isa(0x1) }  // dnnl_cpu_isa_sse41
                oneDNNVersion = String(cString: sg_dnnl_version())
                oneDNNISA = isaName(sg_dnnl_effective_isa())
            } else {
                oneDNNProblem = String(cBuffer: error) + " (Debian: apt-get install libdnnl2)"
            }
        }

        let fp32Linear = chooseFP32Linear(env: env, oneDNN: oneDNNVersion != nil, generic: generic)
        let bf16 = chooseBF16(env: env, cpu: cpu, generic: generic, oneDNNISA: oneDNNISA, oneDNNProblem: oneDNNProblem,
                              amxPermission: amxPermission)
        let bf16Linear = chooseBF16Linear(env: env, bf16: bf16)
        Kernels.requestedThreads.withLock { $0.frozen = true }
        let vectorISA = VectorISA.best(cpu, generic: generic, env: env)
        return KernelSelection(
            cpu: cpu, generic: generic, threads: threads, threadsSource: threadsSource,
            openBLASCore: String(cString: sg_openblas_corename()), openBLASConfig: String(cString: sg_openblas_config()),
            openBLASCoreSource: coreSource, oneDNNVersion: oneDNNVersion, oneDNNISA: oneDNNISA,
            oneDNNProblem: oneDNNProblem, fp32Linear: fp32Linear, bf16: bf16, bf16Linear: bf16Linear,
            amxPermission: amxPermission, vectorISA: vectorISA,
            channelsLast: vectorISA == .avx512 && env["SANAGRAPH_CHANNELS_LAST"] != "0",
            storedWeights: env["SANAGRAPH_STORED_WEIGHTS"] != "0", fusedGLUMBConv: env["SANAGRAPH_FUSED_GLUMBCONV"] != "0")
    }

    /// Keeps freed blocks below 32 MiB in glibc's heap for reuse (see `Kernels`), unless the user tuned malloc.
    private static func retainFreedMemory(env: [String: String]) {
        let userTuned = env.keys.contains { $0.hasPrefix("MALLOC_") && $0.hasSuffix("_") }
            || env["GLIBC_TUNABLES"]?.contains("glibc.malloc") == true
        guard !userTuned else { return }
        sg_malloc_retain(32 << 20, 256 << 20)
    }

    /// `--threads` > `SANAGRAPH_THREADS` > the CPUs in the affinity mask, capped by a cgroup v2 CPU quota.
    static func resolveThreads(env: [String: String], cpu: CPUFeatures) -> (Int, String) {
        if let n = Kernels.requestedThreads.withLock({ $0.threads }) { return (n, "--threads") }
        if let s = env["SANAGRAPH_THREADS"], let n = Int(s), n > 0 { return (n, "SANAGRAPH_THREADS") }
        if let quota = cgroupCPUQuota(), quota < cpu.logicalCPUs { return (quota, "cgroup CPU quota") }
        return (cpu.logicalCPUs, "all CPUs")
    }

    /// CPUs granted by a cgroup v2 `cpu.max` quota ("200000 100000" → 2), rounded up; nil without a quota.
    static func cgroupCPUQuota() -> Int? {
        guard let text = try? String(contentsOfFile: "/sys/fs/cgroup/cpu.max", encoding: .utf8) else { return nil }
        let parts = text.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        guard parts.count == 2, let quota = Double(parts[0]), let period = Double(parts[1]), period > 0 else { return nil }
        return Swift.max(1, Int((quota / period).rounded(.up)))
    }

    static func chooseFP32Linear(env: [String: String], oneDNN: Bool, generic: Bool) -> LinearBackend {
        switch env["SANAGRAPH_FP32"]?.lowercased() {
        case "openblas": return .openBLAS
        case "onednn": return oneDNN ? .oneDNN : .openBLAS
        default: return oneDNN && !generic && preferOneDNNForFP32 ? .oneDNN : .openBLAS
        }
    }

    /// Whether oneDNN (prepacked weights) runs fp32 linear layers by default. See docs/performance.md
    /// ("Kernel choice") for the measurements behind it.
    static let preferOneDNNForFP32 = true

    /// The AMX kernel where bf16 runs on AMX, unless `SANAGRAPH_BF16_LINEAR=onednn`.
    static func chooseBF16Linear(env: [String: String], bf16: BF16Path) -> BF16LinearBackend {
        guard case .native(let isa) = bf16, isa.contains("amx"), env["SANAGRAPH_BF16_LINEAR"]?.lowercased() != "onednn"
        else { return .oneDNN }
        return sg_amx_usable() == 1 ? .amxTiles : .oneDNN
    }

    static func chooseBF16(env: [String: String], cpu: CPUFeatures, generic: Bool, oneDNNISA: String?,
                           oneDNNProblem: String?, amxPermission: Bool?) -> BF16Path {
        let mode = env["SANAGRAPH_BF16"]?.lowercased() ?? "auto"
        if mode == "off" { return .unavailable(reason: "SANAGRAPH_BF16=off") }
        if mode == "emulate" { return .emulated }
        let forced = mode == "on"
        if generic && !forced { return .unavailable(reason: "SANAGRAPH_CPU=generic") }
        // A native path needs oneDNN and a bf16 unit: AMX tiles (with the kernel's permission) or AVX512_BF16.
        if let isa = oneDNNISA, !generic {
            if cpu.amxBF16 && amxPermission == true && isa.contains("amx") { return .native(isa: isa) }
            if cpu.avx512BF16 && (isa.contains("bf16") || isa.contains("amx")) { return .native(isa: "avx512_core_bf16") }
        }
        if forced { return .emulated }
        if cpu.amxBF16 && amxPermission == false {
            return .unavailable(reason: "the CPU has AMX but the kernel refused the AMX permission (Linux ≥ 5.16 needed)")
        }
        if oneDNNISA == nil && (cpu.amxBF16 || cpu.avx512BF16) {
            return .unavailable(reason: "oneDNN is not available: \(oneDNNProblem ?? "not loaded")")
        }
        return .unavailable(reason: "this CPU has no bf16 unit (AMX-BF16 or AVX512_BF16)")
    }

    /// oneDNN's `dnnl_cpu_isa_t` values (oneDNN 2.6) by name.
    static func isaName(_ isa: Int32) -> String {
        switch isa {
        case 0x1: return "sse41"
        case 0x3: return "avx"
        case 0x7: return "avx2"
        case 0x407: return "avx2_vnni"
        case 0x27: return "avx512_core"
        case 0x67: return "avx512_core_vnni"
        case 0xe7: return "avx512_core_bf16"
        case 0x3e7: return "avx512_core_amx"
        default: return String(format: "isa 0x%x", isa)
        }
    }
}

/// A value behind a lock.
final class Locked<Value: Sendable>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    init(_ value: Value) { self.value = value }
    func withLock<R>(_ body: (inout Value) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
