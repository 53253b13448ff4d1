#if canImport(Glibc)
import Glibc
#endif
/// cuBLASLt (`libcublasLt.so.13`/`.12`), loaded with `dlopen`: the GEMMs, bf16 operands with fp32 accumulation
/// on the tensor cores. Declarations follow cublasLt.h (CUDA 12/13).
final class CuBLASLtLibrary: @unchecked Sendable {
    typealias Status = Int32
    typealias Handle = OpaquePointer
    let library: DynamicLibrary
    let version: Int

    let cublasLtCreate: @convention(c) (UnsafeMutablePointer<Handle?>) -> Status
    let cublasLtMatmulDescCreate: @convention(c) (UnsafeMutablePointer<Handle?>, Int32, Int32) -> Status
    let cublasLtMatmulDescSetAttribute: @convention(c) (Handle?, Int32, UnsafeRawPointer, Int) -> Status
    let cublasLtMatmulDescDestroy: @convention(c) (Handle?) -> Status
    let cublasLtMatrixLayoutCreate: @convention(c) (UnsafeMutablePointer<Handle?>, Int32, UInt64, UInt64, Int64) -> Status
    let cublasLtMatrixLayoutSetAttribute: @convention(c) (Handle?, Int32, UnsafeRawPointer, Int) -> Status
    let cublasLtMatrixLayoutDestroy: @convention(c) (Handle?) -> Status
    let cublasLtMatmulPreferenceCreate: @convention(c) (UnsafeMutablePointer<Handle?>) -> Status
    let cublasLtMatmulPreferenceSetAttribute: @convention(c) (Handle?, Int32, UnsafeRawPointer, Int) -> Status
    let cublasLtMatmulPreferenceDestroy: @convention(c) (Handle?) -> Status
    let cublasLtMatmulAlgoGetHeuristic: @convention(c) (Handle?, Handle?, Handle?, Handle?, Handle?, Handle?, Handle?,
                                                        Int32, UnsafeMutableRawPointer,
                                                        UnsafeMutablePointer<Int32>) -> Status
    let cublasLtMatmul: @convention(c) (Handle?, Handle?, UnsafeRawPointer, UnsafeRawPointer?, Handle?,
                                        UnsafeRawPointer?, Handle?, UnsafeRawPointer, UnsafeRawPointer?, Handle?,
                                        UnsafeMutableRawPointer?, Handle?, UnsafeRawPointer?, UnsafeMutableRawPointer?,
                                        Int, CUHandle?) -> Status

    /// `cublasLtMatmulHeuristicResult_t` (96 bytes: algo 64, workspaceSize 8, state 4, wavesCount 4, reserved 16).
    struct HeuristicResult {
        var algo: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
        var workspaceSize: Int = 0
        var state: Int32 = 0
        var wavesCount: Float = 0
        var reserved: (Int32, Int32, Int32, Int32) = (0, 0, 0, 0)
    }

    // Enum values from cublasLt.h / cublas_api.h / library_types.h.
    static let computeType32F: Int32 = 68          // CUBLAS_COMPUTE_32F
    static let dataTypeF32: Int32 = 0               // CUDA_R_32F
    static let dataTypeBF16: Int32 = 14             // CUDA_R_16BF
    static let opN: Int32 = 0, opT: Int32 = 1
    static let descTransA: Int32 = 3, descTransB: Int32 = 4, descEpilogue: Int32 = 7, descBiasPointer: Int32 = 8
    static let descBiasDataType: Int32 = 26
    static let epilogueDefault: UInt32 = 1, epilogueBias: UInt32 = 4
    static let layoutBatchCount: Int32 = 5, layoutStridedBatchOffset: Int32 = 6
    static let prefMaxWorkspaceBytes: Int32 = 1
    static let prefMinAlignmentA: Int32 = 5, prefMinAlignmentB: Int32 = 6
    static let prefMinAlignmentC: Int32 = 7, prefMinAlignmentD: Int32 = 8

    private init(_ lib: DynamicLibrary) throws(CUDAError) {
        library = lib
        cublasLtCreate = try lib.function("cublasLtCreate")
        cublasLtMatmulDescCreate = try lib.function("cublasLtMatmulDescCreate")
        cublasLtMatmulDescSetAttribute = try lib.function("cublasLtMatmulDescSetAttribute")
        cublasLtMatmulDescDestroy = try lib.function("cublasLtMatmulDescDestroy")
        cublasLtMatrixLayoutCreate = try lib.function("cublasLtMatrixLayoutCreate")
        cublasLtMatrixLayoutSetAttribute = try lib.function("cublasLtMatrixLayoutSetAttribute")
        cublasLtMatrixLayoutDestroy = try lib.function("cublasLtMatrixLayoutDestroy")
        cublasLtMatmulPreferenceCreate = try lib.function("cublasLtMatmulPreferenceCreate")
        cublasLtMatmulPreferenceSetAttribute = try lib.function("cublasLtMatmulPreferenceSetAttribute")
        cublasLtMatmulPreferenceDestroy = try lib.function("cublasLtMatmulPreferenceDestroy")
        cublasLtMatmulAlgoGetHeuristic = try lib.function("cublasLtMatmulAlgoGetHeuristic")
        cublasLtMatmul = try lib.function("cublasLtMatmul")
        let getVersion: @convention(c) () -> Int = try lib.function("cublasLtGetVersion")
        version = getVersion()
    }

    func check(_ status: Status, _ call: String) throws(CUDAError) {
        if status != 0 { throw .cublas(call: call, status: status) }
    }

    private static let lock = Lock()
    nonisolated(unsafe) private static var loaded: Result<CuBLASLtLibrary, CUDAError>?

    static func shared() throws(CUDAError) -> CuBLASLtLibrary {
        try lock.withLock { () -> Result<CuBLASLtLibrary, CUDAError> in
            if let loaded { return loaded }
            let r = Result<CuBLASLtLibrary, CUDAError> { () throws(CUDAError) -> CuBLASLtLibrary in
                try CuBLASLtLibrary(DynamicLibrary(library: "cuBLASLt",
                                                   candidates: ["libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"],
                                                   fallbackDirectories: DynamicLibrary.toolkitDirectories))
            }
            loaded = r
            return r
        }.get()
    }
}

/// One operand of a row-major GEMM: `rows × cols` elements at `pointer`, `ld` elements between rows,
/// `batchStride` elements between the matrices of a strided batch.
public struct GemmOperand: Sendable {
    public var pointer: DevicePointer
    public var ld: Int
    public var batchStride: Int
    public init(_ pointer: DevicePointer, ld: Int, batchStride: Int = 0) {
        self.pointer = pointer; self.ld = ld; self.batchStride = batchStride
    }
}

/// GEMMs on one context through cuBLASLt, in row-major terms:
/// `D[M, N] = alpha · A[M, K] · op(B) + beta · D + bias[N]`, with `op(B) = Bᵀ` when B is stored `[N, K]`
/// (a linear layer's weight) or B when stored `[K, N]`. A and B are bf16; D is bf16 or fp32 (bias of D's type);
/// accumulation is fp32. Descriptors and the heuristic's algorithm are cached per shape.
public final class Gemm: @unchecked Sendable {
    let lib: CuBLASLtLibrary
    let handle: OpaquePointer
    let workspace: DeviceBuffer
    /// The owning context (which keeps this engine for its lifetime): its profiler and setup counters.
    unowned let context: CUDAContext
    private var plans: [PlanKey: Plan] = [:]
    private let lock = Lock()

    init(context: CUDAContext) throws(CUDAError) {
        self.context = context
        lib = try CuBLASLtLibrary.shared()
        var h: OpaquePointer?
        try lib.check(lib.cublasLtCreate(&h), "cublasLtCreate")
        handle = h!
        workspace = try context.allocator.allocate(bytes: Self.workspaceBytes)
    }

    /// Hopper's recommended cuBLASLt workspace.
    static let workspaceBytes = 32 << 20

    /// Algorithms asked of the heuristic at each new shape. 1 (the default): its first choice. Above 1: each
    /// candidate runs once untimed (lazy loading) and once between events on the call's own operands, and the
    /// fastest is kept for the shape — a measurement knob (`SANAGRAPH_CUDA_GEMM_TUNE=N`, `sanagraph-cuda dcae
    /// --gemm-tune N`) for whether the heuristic leaves time on the table; accumulating GEMMs (β = 1) keep the first
    /// choice, as re-running them would add twice. Set it before any GEMM runs.
    nonisolated(unsafe) public static var tuneCandidates: Int = {
        guard let v = getenv("SANAGRAPH_CUDA_GEMM_TUNE"), let n = Int(String(cString: v)), n > 1 else { return 1 }
        return min(n, 32)
    }()

    struct PlanKey: Hashable {
        var m, n, k: Int
        var lda, ldb, ldd: Int
        var strideA, strideB, strideD: Int
        var batch: Int
        var bTransposed: Bool
        var outputF32: Bool
        var bias: Bool
        var accumulate: Bool
        var alignA, alignB, alignD: Int
    }

    final class Plan {
        let desc: OpaquePointer, layoutA: OpaquePointer, layoutB: OpaquePointer, layoutD: OpaquePointer
        var algo: CuBLASLtLibrary.HeuristicResult
        /// The heuristic's answers, best first (one unless tuning).
        let candidates: [CuBLASLtLibrary.HeuristicResult]
        init(desc: OpaquePointer, layoutA: OpaquePointer, layoutB: OpaquePointer, layoutD: OpaquePointer,
             candidates: [CuBLASLtLibrary.HeuristicResult]) {
            self.desc = desc; self.layoutA = layoutA; self.layoutB = layoutB; self.layoutD = layoutD
            self.candidates = candidates
            algo = candidates[0]
        }
    }

    /// Plans whose algorithm was chosen by timing (`tuneCandidates` > 1): shape, candidates, the chosen index and
    /// the times (ms) — for benchmarks to print.
    public private(set) var tuned: [(shape: String, chosen: Int, milliseconds: [Double])] = []

    /// Largest power of two (≤ 256) dividing the byte address: what cuBLASLt may assume about the pointer.
    static func alignment(_ p: DevicePointer) -> Int {
        p == 0 ? 256 : min(256, 1 << p.trailingZeroBitCount)
    }

    /// Runs the GEMM on `stream`. `a` is `[M, K]`; `b` is `[N, K]` when `bTransposed` (weights) else `[K, N]`;
    /// `d` receives `[M, N]` (fp32 when `outputF32`). With `accumulate`, D += result (beta = 1, in place).
    public func run(m: Int, n: Int, k: Int, a: GemmOperand, b: GemmOperand, bTransposed: Bool,
                    d: GemmOperand, outputF32: Bool, bias: DevicePointer? = nil, alpha: Float = 1,
                    accumulate: Bool = false, batch: Int = 1, stream: CUHandle?) throws(CUDAError) {
        guard m > 0, n > 0, k > 0, batch > 0 else {
            throw .unsupported("an empty GEMM (\(m)×\(n)×\(k), batch \(batch))")
        }
        let key = PlanKey(m: m, n: n, k: k, lda: a.ld, ldb: b.ld, ldd: d.ld, strideA: a.batchStride,
                          strideB: b.batchStride, strideD: d.batchStride, batch: batch, bTransposed: bTransposed,
                          outputF32: outputF32, bias: bias != nil, accumulate: accumulate,
                          alignA: Self.alignment(a.pointer), alignB: Self.alignment(b.pointer),
                          alignD: Self.alignment(d.pointer))
        // Bytes for the profiler: A and B read once, D written (and read with accumulate); its GB/s is a lower bound
        // where tiles re-read operands from HBM.
        try context.profiled("gemm n=\(n) k=\(k) \(outputF32 ? "f32" : "bf16")\(bias != nil ? "+bias" : "")"
                                + (accumulate ? " β=1" : "") + (batch > 1 ? " batch" : ""),
                             bytes: batch * (m * k * 2 + n * k * 2 + m * n * (outputF32 ? 4 : 2) * (accumulate ? 2 : 1)),
                             flops: 2 * m * n * k * batch) { () throws(CUDAError) in
            try enqueue(key, a: a, b: b, d: d, bias: bias, alpha: alpha, stream: stream)
        }
    }

    private func enqueue(_ key: PlanKey, a: GemmOperand, b: GemmOperand, d: GemmOperand, bias: DevicePointer?,
                         alpha: Float, stream: CUHandle?) throws(CUDAError) {
        let (m, n, k, batch, accumulate) = (key.m, key.n, key.k, key.batch, key.accumulate)
        // One lock around plan lookup, the bias pointer (an attribute of the shared descriptor) and the enqueue.
        try lock.withLock { () throws(CUDAError) in
            let plan: Plan
            var fresh = false
            if let p = plans[key] {
                plan = p
            } else {
                let t0 = SetupCounters.now()
                plan = try makePlan(key, biasPointer: bias, candidates: accumulate ? 1 : Self.tuneCandidates)
                let seconds = SetupCounters.now() - t0
                context.setup.add { $0.heuristicQueries += 1; $0.heuristicSeconds += seconds }
                plans[key] = plan
                fresh = true
            }
            if var biasPointer = bias {
                try lib.check(lib.cublasLtMatmulDescSetAttribute(plan.desc, CuBLASLtLibrary.descBiasPointer, &biasPointer,
                                                                 MemoryLayout<UInt64>.size), "set bias pointer")
            }
            let beta: Float = accumulate ? 1 : 0
            if fresh && plan.candidates.count > 1 {
                try tune(plan, key, a: a, b: b, d: d, alpha: alpha, stream: stream)
            }
            try lib.check(matmul(plan, plan.algo, a: a, b: b, d: d, alpha: alpha, beta: beta, stream: stream),
                          "cublasLtMatmul(\(m)×\(n)×\(k), batch \(batch))")
        }
    }

    /// Queues one cuBLASLt matmul with `algo`.
    private func matmul(_ plan: Plan, _ algo: CuBLASLtLibrary.HeuristicResult, a: GemmOperand, b: GemmOperand,
                        d: GemmOperand, alpha: Float, beta: Float, stream: CUHandle?) -> CuBLASLtLibrary.Status {
        var alphaValue = alpha, betaValue = beta
        // Column-major view: Dᵀ[N, M] = op(B)ᵀ · Aᵀ, so cuBLASLt's "A" is our B and its "B" our A.
        let dPointer = UnsafeMutableRawPointer(bitPattern: UInt(d.pointer))
        var algoBytes = algo.algo
        return withUnsafePointer(to: &algoBytes) { algoPointer in
            lib.cublasLtMatmul(handle, plan.desc, &alphaValue,
                               UnsafeRawPointer(bitPattern: UInt(b.pointer)), plan.layoutA,
                               UnsafeRawPointer(bitPattern: UInt(a.pointer)), plan.layoutB,
                               &betaValue, UnsafeRawPointer(dPointer), plan.layoutD, dPointer, plan.layoutD,
                               UnsafeRawPointer(algoPointer),
                               UnsafeMutableRawPointer(bitPattern: UInt(workspace.pointer)), Self.workspaceBytes,
                               stream)
        }
    }

    /// Times each candidate of a fresh plan on the call's operands (β = 0, so re-running only rewrites D) and keeps
    /// the fastest. A candidate cuBLASLt rejects at run time is skipped.
    private func tune(_ plan: Plan, _ key: PlanKey, a: GemmOperand, b: GemmOperand, d: GemmOperand, alpha: Float,
                      stream: CUHandle?) throws(CUDAError) {
        let driver = context.driver
        var start: CUHandle?, end: CUHandle?
        try driver.check(driver.cuEventCreate(&start, 0), "cuEventCreate")
        try driver.check(driver.cuEventCreate(&end, 0), "cuEventCreate")
        defer { _ = driver.cuEventDestroy(start); _ = driver.cuEventDestroy(end) }
        var times: [Double] = []
        for candidate in plan.candidates {
            guard matmul(plan, candidate, a: a, b: b, d: d, alpha: alpha, beta: 0, stream: stream) == 0 else {
                times.append(.infinity)
                continue
            }
            try driver.check(driver.cuEventRecord(start, stream), "cuEventRecord")
            _ = matmul(plan, candidate, a: a, b: b, d: d, alpha: alpha, beta: 0, stream: stream)
            try driver.check(driver.cuEventRecord(end, stream), "cuEventRecord")
            try driver.check(driver.cuEventSynchronize(end), "cuEventSynchronize")
            var ms: Float = 0
            try driver.check(driver.cuEventElapsedTime(&ms, start, end), "cuEventElapsedTime")
            times.append(Double(ms))
        }
        let best = times.indices.min { times[$0] < times[$1] } ?? 0
        plan.algo = plan.candidates[best]
        tuned.append((shape: "\(key.m)×\(key.n)×\(key.k)\(key.outputF32 ? " f32" : " bf16")", chosen: best,
                      milliseconds: times))
    }

    private func makePlan(_ key: PlanKey, biasPointer: DevicePointer?, candidates: Int) throws(CUDAError) -> Plan {
        typealias L = CuBLASLtLibrary
        var desc: OpaquePointer?
        try lib.check(lib.cublasLtMatmulDescCreate(&desc, L.computeType32F, L.dataTypeF32), "cublasLtMatmulDescCreate")
        var transA: Int32 = key.bTransposed ? L.opT : L.opN
        var transB: Int32 = L.opN
        try lib.check(lib.cublasLtMatmulDescSetAttribute(desc, L.descTransA, &transA, 4), "set transA")
        try lib.check(lib.cublasLtMatmulDescSetAttribute(desc, L.descTransB, &transB, 4), "set transB")
        let outType = key.outputF32 ? L.dataTypeF32 : L.dataTypeBF16
        if key.bias, var p = biasPointer {
            var epilogue = L.epilogueBias
            var biasType = outType
            try lib.check(lib.cublasLtMatmulDescSetAttribute(desc, L.descEpilogue, &epilogue, 4), "set epilogue")
            try lib.check(lib.cublasLtMatmulDescSetAttribute(desc, L.descBiasDataType, &biasType, 4), "set bias type")
            try lib.check(lib.cublasLtMatmulDescSetAttribute(desc, L.descBiasPointer, &p, 8), "set bias pointer")
        }
        // Column-major layouts of the same memory (see `run`).
        func layout(_ type: Int32, rows: Int, cols: Int, ld: Int, stride: Int) throws(CUDAError) -> OpaquePointer {
            var l: OpaquePointer?
            try lib.check(lib.cublasLtMatrixLayoutCreate(&l, type, UInt64(rows), UInt64(cols), Int64(ld)),
                          "cublasLtMatrixLayoutCreate")
            if key.batch > 1 {
                var count = Int32(key.batch)
                var s = Int64(stride)
                try lib.check(lib.cublasLtMatrixLayoutSetAttribute(l, L.layoutBatchCount, &count, 4), "set batch count")
                try lib.check(lib.cublasLtMatrixLayoutSetAttribute(l, L.layoutStridedBatchOffset, &s, 8), "set batch stride")
            }
            return l!
        }
        let layoutA = try key.bTransposed
            ? layout(L.dataTypeBF16, rows: key.k, cols: key.n, ld: key.ldb, stride: key.strideB)
            : layout(L.dataTypeBF16, rows: key.n, cols: key.k, ld: key.ldb, stride: key.strideB)
        let layoutB = try layout(L.dataTypeBF16, rows: key.k, cols: key.m, ld: key.lda, stride: key.strideA)
        let layoutD = try layout(outType, rows: key.n, cols: key.m, ld: key.ldd, stride: key.strideD)

        var pref: OpaquePointer?
        try lib.check(lib.cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate")
        defer { _ = lib.cublasLtMatmulPreferenceDestroy(pref) }
        var ws = UInt64(Self.workspaceBytes)
        try lib.check(lib.cublasLtMatmulPreferenceSetAttribute(pref, L.prefMaxWorkspaceBytes, &ws, 8), "set workspace")
        // Our "A" in cuBLASLt terms is B, and vice versa.
        var alignA = UInt32(key.alignB), alignB = UInt32(key.alignA), alignD = UInt32(key.alignD)
        try lib.check(lib.cublasLtMatmulPreferenceSetAttribute(pref, L.prefMinAlignmentA, &alignA, 4), "set alignment")
        try lib.check(lib.cublasLtMatmulPreferenceSetAttribute(pref, L.prefMinAlignmentB, &alignB, 4), "set alignment")
        try lib.check(lib.cublasLtMatmulPreferenceSetAttribute(pref, L.prefMinAlignmentC, &alignD, 4), "set alignment")
        try lib.check(lib.cublasLtMatmulPreferenceSetAttribute(pref, L.prefMinAlignmentD, &alignD, 4), "set alignment")

        var results = [L.HeuristicResult](repeating: L.HeuristicResult(), count: max(candidates, 1))
        var found: Int32 = 0
        try lib.check(results.withUnsafeMutableBytes { buffer in
            lib.cublasLtMatmulAlgoGetHeuristic(handle, desc, layoutA, layoutB, layoutD, layoutD, pref,
                                               Int32(buffer.count / MemoryLayout<L.HeuristicResult>.stride),
                                               buffer.baseAddress!, &found)
        }, "cublasLtMatmulAlgoGetHeuristic")
        let usable = results.prefix(Int(found)).filter { $0.state == 0 }
        guard !usable.isEmpty else {
            throw .unsupported("no cuBLASLt algorithm for GEMM \(key.m)×\(key.n)×\(key.k) (batch \(key.batch))")
        }
        return Plan(desc: desc!, layoutA: layoutA, layoutB: layoutB, layoutD: layoutD, candidates: Array(usable))
    }
}
