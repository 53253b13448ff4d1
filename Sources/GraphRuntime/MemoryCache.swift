import SanaGraphKit
import Synchronization

/// What a cache store is told about the node whose outputs it is asked to keep or find.
public struct CacheEntryInfo: Sendable {
    /// The graph node id (for logs; never part of the key).
    public var nodeID: String
    public var descriptor: NodeDescriptor
    /// Reports a problem with the store's entry for this node (corrupt blob, failed write): the executor logs it
    /// and emits a `cache_warning` event. The run goes on; the node is recomputed.
    public var warn: @Sendable (_ store: String, _ message: String) -> Void

    public init(nodeID: String, descriptor: NodeDescriptor,
                warn: @escaping @Sendable (_ store: String, _ message: String) -> Void = { _, _ in }) {
        self.nodeID = nodeID
        self.descriptor = descriptor
        self.warn = warn
    }
}

/// A place node outputs can be kept under their `CacheKey`. The executor asks its stores in order (fastest
/// first); a hit in a later store is copied into the earlier ones. The in-memory LRU is one store; a disk store
/// plugs in the same way without changing the executor.
///
/// Stores decide for themselves what they keep (a disk store skips models and `diskCacheable == false` nodes).
/// Side-effect nodes are never offered to a store.
public protocol NodeCacheStore: AnyObject, Sendable {
    /// A short name shown in events and plans (`memory`, `disk`).
    var name: String { get }
    /// Whether `key` is present, without loading it (used by `sanagraph plan`).
    func contains(_ key: CacheKey) -> Bool
    /// The outputs stored under `key`, or nil.
    func lookup(_ key: CacheKey, info: CacheEntryInfo) -> NodeOutputs?
    /// Offers outputs for storage; a store may decline silently.
    func store(_ key: CacheKey, outputs: NodeOutputs, info: CacheEntryInfo)
    /// Whether this store would keep (and may serve) this node's outputs at all. Default: every node.
    func accepts(_ info: CacheEntryInfo) -> Bool
    /// The form of a node's fingerprint that enters cache keys. The executor passes each fingerprint through
    /// every store in order; a persistent store replaces file metadata by content hashes. Default: unchanged.
    func canonicalFingerprint(_ fingerprint: String) -> String
}

extension NodeCacheStore {
    public func accepts(_ info: CacheEntryInfo) -> Bool { true }
    public func canonicalFingerprint(_ fingerprint: String) -> String { fingerprint }
}

/// An in-memory LRU cache of node outputs bounded by a byte budget (sum of `Value.byteCount`).
///
/// Holding an entry keeps its values alive after the executor released them (liveness), so the budget is the
/// knob between "recompute nothing on the next run" and "free memory as early as possible". A budget of 0
/// keeps nothing.
public final class MemoryCache: NodeCacheStore {
    private struct Entry {
        var outputs: NodeOutputs
        var bytes: Int
        var lastUse: UInt64
    }

    private struct State {
        var entries: [CacheKey: Entry] = [:]
        var bytes = 0
        var clock: UInt64 = 0
        var hits = 0
        var misses = 0
        var evictions = 0
    }

    /// Counters since creation.
    public struct Statistics: Sendable, Equatable {
        public var entries: Int
        public var bytes: Int
        public var hits: Int
        public var misses: Int
        public var evictions: Int

        public init(entries: Int, bytes: Int, hits: Int, misses: Int, evictions: Int) {
            self.entries = entries
            self.bytes = bytes
            self.hits = hits
            self.misses = misses
            self.evictions = evictions
        }
    }

    public let name = "memory"
    /// Maximum bytes held.
    public let budget: Int
    private let state = Mutex(State())

    public init(budget: Int) { self.budget = max(0, budget) }

    public func contains(_ key: CacheKey) -> Bool { state.withLock { $0.entries[key] != nil } }

    public func lookup(_ key: CacheKey, info: CacheEntryInfo) -> NodeOutputs? {
        state.withLock { s in
            guard var entry = s.entries[key] else {
                s.misses += 1
                return nil
            }
            s.clock += 1
            entry.lastUse = s.clock
            s.entries[key] = entry
            s.hits += 1
            return entry.outputs
        }
    }

    public func store(_ key: CacheKey, outputs: NodeOutputs, info: CacheEntryInfo) {
        let bytes = outputs.values.reduce(0) { $0 + $1.byteCount }
        // An entry larger than the whole budget would only evict everything else and then itself.
        guard bytes <= budget else { return }
        state.withLock { s in
            if let old = s.entries[key] { s.bytes -= old.bytes }
            s.clock += 1
            s.entries[key] = Entry(outputs: outputs, bytes: bytes, lastUse: s.clock)
            s.bytes += bytes
            while s.bytes > budget {
                // Least recently used first. Linear scan: caches hold tens of entries, not millions.
                guard let victim = s.entries.min(by: { $0.value.lastUse < $1.value.lastUse })?.key else { break }
                s.bytes -= s.entries[victim]!.bytes
                s.entries[victim] = nil
                s.evictions += 1
            }
        }
    }

    /// Drops every entry.
    public func removeAll() {
        state.withLock { s in
            s.entries = [:]
            s.bytes = 0
        }
    }

    public var statistics: Statistics {
        state.withLock { s in
            Statistics(entries: s.entries.count, bytes: s.bytes, hits: s.hits, misses: s.misses, evictions: s.evictions)
        }
    }
}
