internal import CKernels

/// What this CPU can do, from CPUID and the OS's saved-state mask (XCR0): a feature counts only when the OS
/// also saves its registers. Kernel choices are made from these flags, never from model numbers.
public struct CPUFeatures: Sendable, Equatable {
    public var vendor: String
    /// The marketing name (CPUID brand string), e.g. "AMD EPYC" or "Intel(R) Xeon(R) Processor".
    public var brand: String
    public var family: Int, model: Int, stepping: Int
    public var avx2: Bool, fma: Bool, f16c: Bool
    public var avx512f: Bool, avx512bw: Bool, avx512dq: Bool, avx512vl: Bool
    public var avx512VNNI: Bool, avx512BF16: Bool, avx512FP16: Bool
    public var amxTile: Bool, amxBF16: Bool, amxInt8: Bool
    /// The flag names present, lower case as `/proc/cpuinfo` spells them.
    public var flags: [String]
    /// CPUs this process may run on (its affinity mask).
    public var logicalCPUs: Int

    /// The CPU this process runs on.
    public static let host: CPUFeatures = {
        var info = sg_cpu_info()
        sg_cpu_detect(&info)
        return CPUFeatures(info)
    }()

    init(_ i: sg_cpu_info) {
        vendor = withUnsafeBytes(of: i.vendor) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        brand = withUnsafeBytes(of: i.brand) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        family = Int(i.family); model = Int(i.model); stepping = Int(i.stepping)
        avx2 = i.avx2 != 0; fma = i.fma != 0; f16c = i.f16c != 0
        avx512f = i.avx512f != 0; avx512bw = i.avx512bw != 0; avx512dq = i.avx512dq != 0; avx512vl = i.avx512vl != 0
        avx512VNNI = i.avx512_vnni != 0; avx512BF16 = i.avx512_bf16 != 0; avx512FP16 = i.avx512_fp16 != 0
        amxTile = i.amx_tile != 0; amxBF16 = i.amx_bf16 != 0; amxInt8 = i.amx_int8 != 0
        let named: [(String, Int32)] = [
            ("sse3", i.sse3), ("ssse3", i.ssse3), ("sse4_1", i.sse41), ("sse4_2", i.sse42), ("popcnt", i.popcnt),
            ("avx", i.avx), ("avx2", i.avx2), ("fma", i.fma), ("f16c", i.f16c), ("bmi2", i.bmi2),
            ("avx512f", i.avx512f), ("avx512cd", i.avx512cd), ("avx512bw", i.avx512bw), ("avx512dq", i.avx512dq),
            ("avx512vl", i.avx512vl), ("avx512_vnni", i.avx512_vnni), ("avx512_bf16", i.avx512_bf16),
            ("avx512_fp16", i.avx512_fp16), ("avx_vnni", i.avx_vnni), ("amx_tile", i.amx_tile),
            ("amx_bf16", i.amx_bf16), ("amx_int8", i.amx_int8),
        ]
        flags = named.filter { $0.1 != 0 }.map(\.0)
        logicalCPUs = Swift.max(1, Int(i.logical_cpus))
    }

    /// AVX-512 as OpenBLAS's SkylakeX kernels and oneDNN's `avx512_core` need it.
    public var avx512Core: Bool { avx512f && avx512bw && avx512dq && avx512vl }

    /// The OpenBLAS 0.3.21 core (its DYNAMIC_ARCH kernel set) for these features: the newest one whose
    /// instructions the CPU has. OpenBLAS's own detection goes by model number and falls back to SSE3
    /// "Prescott" for models it does not know (e.g. Emerald Rapids), 5–7× slower.
    public var openBLASCore: String {
        if avx512Core { return avx512BF16 ? "Cooperlake" : "SkylakeX" }
        if avx2 && fma { return "Haswell" }
        if flags.contains("avx") { return "Sandybridge" }
        if flags.contains("sse4_2") { return "Nehalem" }
        return "Prescott"
    }
}
