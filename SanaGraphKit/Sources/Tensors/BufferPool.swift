import Foundation

/// Recycles large tensor buffers.
///
/// Why: glibc serves blocks ≥ 32 MiB (and, until its threshold adapts, ≥ 128 KiB) with `mmap` and unmaps them
/// on free, so every large activation was page-faulted in again on every call (~5-7 µs per 4 KiB page on the
/// development VM: 80 ms for one 47 MB tensor). The pool hands out 2 MiB-aligned blocks and keeps freed
/// blocks, by rounded size, for the
/// next request of the same size — a denoising loop allocates the same shapes every step.
///
/// Huge pages are opt-in: on the development VM first-touching fresh memory is dominated by the hypervisor
/// backing it (kernel `clear_page` ≈ 87 % of a fp16 weight load in `perf`), and huge pages made that slower
/// (fp16 Sana-600M load 10.9 s / 4.3 s with, 3.9 s / 2.8 s without), so reuse is what helps here.
///
/// Settings (read once at start): `SANAGRAPH_BUFFER_POOL_MB` caps the bytes kept while unused (default 256;
/// 0 keeps nothing); `SANAGRAPH_HUGEPAGES=1` advises transparent huge pages for new blocks. Thread-safe.
public final class BufferPool: @unchecked Sendable {
    /// The pool `TensorStorage` uses.
    public static let shared: BufferPool = {
        let env = ProcessInfo.processInfo.environment
        let mb = env["SANAGRAPH_BUFFER_POOL_MB"].flatMap(Int.init).map { Swift.max(0, $0) } ?? 256
        return BufferPool(capacityBytes: mb << 20, hugePages: env["SANAGRAPH_HUGEPAGES"] == "1")
    }()

    /// Requests smaller than this go to `malloc` (glibc reuses them well).
    public static let minimumBytes = 4 << 20
    /// Block size granularity and alignment: one x86-64 huge page.
    static let granule = 2 << 20

    /// Most bytes kept in unused blocks.
    public let capacityBytes: Int
    let hugePages: Bool

    private let lock = NSLock()
    private var free: [Int: [UnsafeMutableRawPointer]] = [:]
    private var cached = 0
    private var hits = 0, misses = 0

    public init(capacityBytes: Int, hugePages: Bool = true) {
        self.capacityBytes = capacityBytes
        self.hugePages = hugePages
    }

    /// Bytes currently held in unused blocks.
    public var cachedBytes: Int { lock.withLock { cached } }

    /// Requests served from the pool and requests that needed a new block.
    public var statistics: (hits: Int, misses: Int) { lock.withLock { (hits, misses) } }

    /// A block of at least `bytes`, and its rounded size (pass it back to `give`). Nil if memory is exhausted.
    func take(bytes: Int) -> (UnsafeMutableRawPointer, Int)? {
        let rounded = (bytes + Self.granule - 1) / Self.granule * Self.granule
        let reused: UnsafeMutableRawPointer? = lock.withLock {
            if var list = free[rounded], let p = list.popLast() {
                free[rounded] = list.isEmpty ? nil : list  // no empty lists: `give` evicts from any listed size
                cached -= rounded
                hits += 1
                return p
            }
            misses += 1
            return nil
        }
        if let reused { return (reused, rounded) }
        var p: UnsafeMutableRawPointer?
        guard posix_memalign(&p, Self.granule, rounded) == 0, let p else { return nil }
        if hugePages { _ = madvise(p, rounded, Int32(MADV_HUGEPAGE)) }
        return (p, rounded)
    }

    /// Returns a block from `take`: kept for reuse while the pool has room, else freed.
    func give(_ p: UnsafeMutableRawPointer, bytes rounded: Int) {
        var evicted: [UnsafeMutableRawPointer] = []
        let keep: Bool = lock.withLock {
            guard rounded <= capacityBytes else { return false }
            // Make room by dropping other blocks (largest size class first: they are the rarest to repeat).
            while cached + rounded > capacityBytes, let size = free.keys.max(), var list = free[size],
                  let victim = list.popLast() {
                evicted.append(victim)
                cached -= size
                free[size] = list.isEmpty ? nil : list
            }
            free[rounded, default: []].append(p)
            cached += rounded
            return true
        }
        if !keep { Foundation.free(p) }
        for e in evicted { Foundation.free(e) }
    }

    /// Frees every unused block (e.g. between pipeline stages whose shapes differ).
    public func trim() {
        let blocks: [UnsafeMutableRawPointer] = lock.withLock {
            let all = free.values.flatMap { $0 }
            free = [:]
            cached = 0
            return all
        }
        for b in blocks { Foundation.free(b) }
    }
}
