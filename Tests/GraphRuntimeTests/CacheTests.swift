import Foundation
import GraphRuntime
import Tensors
import Testing
import TestSupport

@Suite struct CacheKeyTests {
    static let upstream = CacheKey.compute(typeName: "up", version: 1, params: ParamValues(), inputs: [:],
                                           fingerprint: nil)

    func key(type: String = "t", version: Int = 1, params: [String: ParamValue] = ["n": .int(3)],
             inputs: [String: (key: CacheKey, output: String)]? = nil, fingerprint: String? = nil) -> CacheKey {
        CacheKey.compute(typeName: type, version: version, params: ParamValues(params),
                         inputs: inputs ?? ["x": (Self.upstream, "value")], fingerprint: fingerprint)
    }

    @Test func sameInputsGiveTheSameSHA256Key() {
        #expect(key() == key())
        #expect(key().hex.count == 64)
        #expect(key().hex.allSatisfy { "0123456789abcdef".contains($0) })
    }

    @Test func everyPartChangesTheKey() {
        let base = key()
        let variants: [CacheKey] = [
            key(type: "u"),
            key(version: 2),
            key(params: ["n": .int(4)]),
            key(params: ["m": .int(3)]),
            key(params: ["n": .int(3), "extra": .bool(false)]),
            key(inputs: ["y": (Self.upstream, "value")]),
            key(inputs: ["x": (Self.upstream, "other")]),
            key(inputs: ["x": (key(type: "other-upstream"), "value")]),
            key(inputs: [:]),
            key(fingerprint: "abc"),
        ]
        for v in variants { #expect(v != base) }
        #expect(Set(variants).count == variants.count)
        #expect(key(fingerprint: "abc") != key(fingerprint: "abd"))
    }

    @Test func paramsAreTypedInTheKey() {
        let asInt = key(params: ["v": .int(3)])
        let asFloat = key(params: ["v": .float(3)])
        let asString = key(params: ["v": .string("3")])
        let asBool = key(params: ["v": .bool(true)])
        #expect(Set([asInt, asFloat, asString, asBool]).count == 4)
        // Negative zero behaves as zero, so it shares a key; NaN-free floats differ by value.
        #expect(key(params: ["v": .float(-0.0)]) == key(params: ["v": .float(0.0)]))
        #expect(key(params: ["v": .float(0.1)]) != key(params: ["v": .float(0.1000000001)]))
    }

    @Test func fieldBoundariesAreUnambiguous() {
        // "ab" + "c" must not collide with "a" + "bc" anywhere in the encoding.
        #expect(key(type: "ab", params: ["c": .string("")]) != key(type: "a", params: ["bc": .string("")]))
        #expect(key(params: ["a": .string("b")]) != key(params: ["ab": .string("")]))
    }

    @Test func keyIsIndependentOfDictionaryOrder() {
        var a: [String: ParamValue] = [:]
        var b: [String: ParamValue] = [:]
        let names = (0..<40).map { "p\($0)" }
        for n in names { a[n] = .int(n.count) }
        for n in names.reversed() { b[n] = .int(n.count) }
        #expect(key(params: a) == key(params: b))
    }
}

@Suite struct MemoryCacheTests {
    let info = CacheEntryInfo(nodeID: "n", descriptor: ConstIntNode.descriptor)

    func k(_ i: Int) -> CacheKey {
        CacheKey.compute(typeName: "k", version: i, params: ParamValues(), inputs: [:], fingerprint: nil)
    }

    /// A tensor value of `n` floats (4n bytes).
    func tensor(_ n: Int) -> NodeOutputs { ["t": .tensor(Tensor(shape: [n], values: [Float](repeating: 1, count: n)))] }

    @Test func storesAndReturnsEntries() {
        let cache = MemoryCache(budget: 1000)
        #expect(cache.lookup(k(1), info: info) == nil)
        cache.store(k(1), outputs: ["v": .int(5)], info: info)
        #expect(cache.contains(k(1)))
        guard cache.lookup(k(1), info: info)?["v"]?.payload(as: Int.self) == 5 else {
            Issue.record("entry not returned")
            return
        }
        #expect(cache.statistics == .init(entries: 1, bytes: 8, hits: 1, misses: 1, evictions: 0))
    }

    @Test func evictsLeastRecentlyUsedBeyondTheBudget() {
        let cache = MemoryCache(budget: 1000) // room for two 400-byte entries
        cache.store(k(1), outputs: tensor(100), info: info)
        cache.store(k(2), outputs: tensor(100), info: info)
        _ = cache.lookup(k(1), info: info) // k(1) is now more recent than k(2)
        cache.store(k(3), outputs: tensor(100), info: info)
        #expect(cache.contains(k(1)))
        #expect(!cache.contains(k(2)))
        #expect(cache.contains(k(3)))
        #expect(cache.statistics.bytes == 800)
        #expect(cache.statistics.evictions == 1)
    }

    @Test func entriesLargerThanTheBudgetAreNotStored() {
        let cache = MemoryCache(budget: 1000)
        cache.store(k(1), outputs: tensor(100), info: info)
        cache.store(k(2), outputs: tensor(300), info: info) // 1200 bytes
        #expect(!cache.contains(k(2)))
        #expect(cache.contains(k(1))) // and nothing was evicted for it
    }

    @Test func zeroBudgetKeepsNothing() {
        let cache = MemoryCache(budget: 0)
        cache.store(k(1), outputs: ["v": .int(1)], info: info)
        #expect(!cache.contains(k(1)))
        #expect(cache.statistics.entries == 0)
    }

    @Test func restoringAKeyReplacesItsBytes() {
        let cache = MemoryCache(budget: 1000)
        cache.store(k(1), outputs: tensor(100), info: info)
        cache.store(k(1), outputs: tensor(50), info: info)
        #expect(cache.statistics.bytes == 200)
        #expect(cache.statistics.entries == 1)
        cache.removeAll()
        #expect(cache.statistics.bytes == 0 && !cache.contains(k(1)))
    }

    @Test func budgetLimitsWhatARepeatedRunFindsCached() throws {
        // The tensor node's entry (4096 floats = 16 KiB) is over the budget; the scalar sum fits.
        let key = ExecTest.key()
        let graph = ExecTest.graph([
            NodeSpec("t", MakeTensorNode.self, params: ["width": .int(1024), "height": .int(4), "key": .string(key)]),
            NodeSpec("s", TensorSumNode.self, params: ["key": .string(key)], inputs: ["tensor": "t.tensor"]),
            NodeSpec("out", SinkNode.self, params: ["key": .string(key)], inputs: ["value": "s"]),
        ])
        let log = EventLog()
        let executor = Executor(caches: [MemoryCache(budget: 1024)], events: log.handler)
        try executor.run(graph, plan: ExecTest.plan(graph))
        log.clear()
        try executor.run(graph, plan: ExecTest.plan(graph))
        // `t` is not in the cache, and `s`, its only reader, is: `t` is skipped rather than recomputed.
        #expect(log.finished == ["s": true, "out": false])
        #expect(log.trace.contains("node_skipped:t"))
    }

    @Test func hitInASlowerStoreIsCopiedIntoTheFasterOne() throws {
        let key = ExecTest.key()
        let graph = ExecTest.graph([
            NodeSpec("a", ConstIntNode.self, params: ["value": .int(4), "key": .string(key)]),
            NodeSpec("out", SinkNode.self, params: ["key": .string(key)], inputs: ["value": "a"]),
        ])
        let plan = ExecTest.plan(graph)
        // Fill the slow store from a first executor, then start over with an empty memory cache.
        let slow = DictionaryStore(name: "disk")
        try Executor(caches: [slow]).run(graph, plan: plan)
        #expect(slow.count == 1) // the output node is never stored

        let memory = MemoryCache(budget: 1 << 20)
        let log = EventLog()
        let executor = Executor(caches: [memory, slow], events: log.handler)
        try executor.run(graph, plan: plan)
        #expect(log.summary?.cachedNodes == ["a": "disk"])
        log.clear()
        try executor.run(graph, plan: plan)
        #expect(log.summary?.cachedNodes == ["a": "memory"])
        #expect(TestRecorder.shared.runs(key: key) == ["a", "out", "out", "out"])
    }

    @Test func entryThatBreaksTheOutputContractIsIgnored() throws {
        let key = ExecTest.key()
        let graph = ExecTest.graph([
            NodeSpec("a", ConstIntNode.self, params: ["value": .int(4), "key": .string(key)]),
            NodeSpec("out", SinkNode.self, params: ["key": .string(key)], inputs: ["value": "a"]),
        ])
        let plan = ExecTest.plan(graph)
        let store = DictionaryStore(name: "disk")
        let keys = try Executor().cacheKeys(for: graph, plan: plan)
        store.put(keys["a"]!, ["value": .string("corrupt")])
        let log = EventLog()
        try Executor(caches: [store], events: log.handler).run(graph, plan: plan)
        #expect(log.finished["a"] == false)
        guard TestRecorder.shared.entries(key: key).first?.value.payload(as: Int.self) == 4 else {
            Issue.record("sink did not receive the recomputed value")
            return
        }
    }
}
