import Foundation

/// Recycles large tensor buffers.
///
/// Why: glibc serves blocks ≥ 32 MiB (and, until its threshold adapts, ≥ 128 KiB) with `mmap` and unmaps them
/// on free, so every large activation was page-faulted in again on every call (~5-7 µs per 4 KiB page on the
/// development VM: 80 ms for one 47 MB tensor). The pool hands out 2 MiB-aligned blocks and keeps freed
/// blocks for the next request: a denoising loop allocates the same shapes every step.
///
/// Which block serves a request: the smallest kept block of at least the request and at most twice it (so a
/// decoder whose stages double the resolution reuses the previous stage's blocks). Which blocks are kept: the
/// most recently freed, up to the capacity — the larger of the configured size and twice the largest block in
/// use, so a layer's working set (its input, its output and a convolution's scratch) is reused by the
/// next layer even when one activation is larger than the configured size (a 512 px DC-AE decode's are 128–
/// 192 MiB). Once those large tensors are freed the capacity falls back and their blocks are released.
///
/// Huge pages for the pool's blocks are opt-in: on the development VM first-touching fresh memory is dominated
/// by the hypervisor backing it (kernel `clear_page` ≈ 87 % of a fp16 weight load in `perf`), and huge pages made
/// that slower (fp16 Sana-600M load 10.9 s / 4.3 s with, 3.9 s / 2.8 s without), so reuse is what helps here; on
/// an Emerald Rapids host they were level (fp16 DiT load 1.07–1.15 s with, 1.02–1.11 s without). Weights packed
/// for the AMX kernel (`allocateWeights`) are advised huge pages by default: on that host a bf16 Gemma-2 load
/// took 0.99–1.04 s with them against 1.32–1.55 s without (a million 4 KiB page faults fewer).
///
/// Settings (read once at start): `SANAGRAPH_BUFFER_POOL_MB` is the configured size (default 256; 0 keeps
/// nothing, whatever is in use); `SANAGRAPH_HUGEPAGES=1` advises transparent huge pages for the pool's new
/// blocks too, `SANAGRAPH_HUGEPAGES=0` for nothing. Thread-safe.
public final class BufferPool: @unchecked Sendable {
    /// The pool `TensorStorage` uses.
    public static let shared: BufferPool = {
        let env = ProcessInfo.processInfo.environment
        let mb = env["SANAGRAPH_BUFFER_POOL_MB"].flatMap(Int.init).map { Swift.max(0, $0) } ?? 256
        return BufferPool(capacityBytes: mb << 20, hugePages: env["SANAGRAPH_HUGEPAGES"] == "1",
                          weightHugePages: env["SANAGRAPH_HUGEPAGES"] != "0")
    }()

    /// Requests smaller than this go to `malloc` (glibc reuses them well).
    public static let minimumBytes = 4 << 20
    /// Block size granularity and alignment: one x86-64 huge page.
    static let granule = 2 << 20
    /// `bytes` rounded up to whole granules.
    static func rounded(_ bytes: Int) -> Int { (bytes + granule - 1) / granule * granule }
    /// The capacity is at least this many times the largest block in use.
    static let workingSetBlocks = 2

    /// The configured size: most bytes kept in unused blocks while no large block is in use (0: none ever).
    public let capacityBytes: Int
    let hugePages: Bool, weightHugePages: Bool

    private let lock = NSLock()
    /// Unused blocks, least recently freed first.
    private var free: [(pointer: UnsafeMutableRawPointer, bytes: Int)] = []
    /// Blocks handed out and not yet given back, by size.
    private var inUse: [Int: Int] = [:]
    private var cached = 0
    private var hits = 0, misses = 0

    public init(capacityBytes: Int, hugePages: Bool = true, weightHugePages: Bool = true) {
        self.capacityBytes = capacityBytes
        self.hugePages = hugePages
        self.weightHugePages = weightHugePages
    }

    /// Bytes currently held in unused blocks.
    public var cachedBytes: Int { lock.withLock { cached } }

    /// Requests served from the pool and requests that needed a new block.
    public var statistics: (hits: Int, misses: Int) { lock.withLock { (hits, misses) } }

    /// A block of at least `bytes`, and its size (pass it back to `give`). Nil if memory is exhausted.
    func take(bytes: Int) -> (UnsafeMutableRawPointer, Int)? {
        let rounded = Self.rounded(bytes)
        let reused: (UnsafeMutableRawPointer, Int)? = lock.withLock {
            // The smallest fitting block; of equal sizes the most recently freed (the warmest in cache).
            var best: Int?
            for (i, block) in free.enumerated() where block.bytes >= rounded && block.bytes <= 2 * rounded {
                if best == nil || block.bytes <= free[best!].bytes { best = i }
            }
            guard let best else {
                misses += 1
                inUse[rounded, default: 0] += 1
                return nil
            }
            let block = free.remove(at: best)
            cached -= block.bytes
            hits += 1
            inUse[block.bytes, default: 0] += 1
            return block
        }
        if let reused { return reused }
        guard let p = Self.allocateBlock(rounded, hugePages: hugePages) else {
            lock.withLock { release(inUse: rounded) }
            return nil
        }
        return (p, rounded)
    }

    /// `bytes` (a multiple of `granule`) at a huge-page boundary, advised huge pages if asked; nil if exhausted.
    private static func allocateBlock(_ bytes: Int, hugePages: Bool) -> UnsafeMutableRawPointer? {
        var p: UnsafeMutableRawPointer?
        guard posix_memalign(&p, granule, bytes) == 0, let p else { return nil }
        if hugePages { _ = madvise(p, bytes, Int32(MADV_HUGEPAGE)) }
        return p
    }

    /// Returns a block from `take`: kept for reuse while the pool has room, else freed.
    func give(_ p: UnsafeMutableRawPointer, bytes: Int) {
        let evicted: [UnsafeMutableRawPointer] = lock.withLock {
            release(inUse: bytes)
            let capacity = capacityBytes == 0
                ? 0 : Swift.max(capacityBytes, Self.workingSetBlocks * (inUse.keys.max() ?? 0))
            var evicted: [UnsafeMutableRawPointer] = []
            if bytes <= capacity {
                free.append((p, bytes))
                cached += bytes
            } else {
                evicted.append(p)
            }
            while cached > capacity, !free.isEmpty {  // least recently freed first
                let victim = free.removeFirst()
                cached -= victim.bytes
                evicted.append(victim.pointer)
            }
            return evicted
        }
        for e in evicted { Foundation.free(e) }
    }

    private func release(inUse bytes: Int) {
        if let n = inUse[bytes], n > 1 { inUse[bytes] = n - 1 } else { inUse[bytes] = nil }
    }

    /// Memory for packed weights (not pooled; free it with `deallocate()`): 64-byte aligned, advised huge pages
    /// when it spans one (see above).
    public func allocateWeights(bytes: Int) -> UnsafeMutableRawPointer {
        guard weightHugePages, bytes >= Self.granule,
              let p = Self.allocateBlock(Self.rounded(bytes), hugePages: true) else {
            return .allocate(byteCount: bytes, alignment: 64)
        }
        return p
    }

    /// Frees every unused block (e.g. between pipeline stages whose shapes differ).
    public func trim() {
        let blocks: [UnsafeMutableRawPointer] = lock.withLock {
            let all = free.map(\.pointer)
            free = []
            cached = 0
            return all
        }
        for b in blocks { Foundation.free(b) }
    }
}
