import Foundation
import GraphRuntime
import Testing
import TestSupport

@Suite struct ExecutorTests {
    /// a=2, b=3, sum=a+b+offset, sink(sum); `unused` feeds nothing an output needs.
    func sumGraph(key: String, offset: Int = 0) -> ValidatedGraph {
        ExecTest.graph([
            NodeSpec("a", ConstIntNode.self, params: ["value": .int(2), "key": .string(key)]),
            NodeSpec("b", ConstIntNode.self, params: ["value": .int(3), "key": .string(key)]),
            NodeSpec("unused", ConstIntNode.self, params: ["value": .int(9), "key": .string(key)]),
            NodeSpec("sum", AddNode.self, params: ["offset": .int(offset), "key": .string(key)],
                     inputs: ["a": "a", "b": "b"]),
            NodeSpec("out", SinkNode.self, params: ["key": .string(key)], inputs: ["value": "sum"]),
        ])
    }

    @Test func runsNodesInPlanOrderAndDeliversValues() throws {
        let key = ExecTest.key()
        let graph = sumGraph(key: key, offset: 10)
        let summary = try Executor().run(graph, plan: ExecTest.plan(graph))
        #expect(TestRecorder.shared.runs(key: key) == ["a", "b", "sum", "out"])
        let received = TestRecorder.shared.entries(key: key)
        #expect(received.count == 1)
        guard let v = received.first?.value.payload(as: Int.self) else {
            Issue.record("sink received \(String(describing: received.first?.value))")
            return
        }
        #expect(v == 15)
        #expect(summary.ok && summary.exitCode == 0 && summary.nodesRun == 4 && summary.nodesCached == 0)
    }

    @Test func prunedNodesDoNotRun() throws {
        let key = ExecTest.key()
        let graph = sumGraph(key: key)
        let plan = ExecTest.plan(graph)
        #expect(plan.pruned == ["unused"])
        let log = EventLog()
        try Executor(events: log.handler).run(graph, plan: plan)
        #expect(!TestRecorder.shared.runs(key: key).contains("unused"))
        #expect(!log.trace.contains { $0.hasSuffix(":unused") })
        guard case .runStarted(_, let steps, let pruned)? = log.all.first else {
            Issue.record("first event is not run_started")
            return
        }
        #expect(steps == 4 && pruned == ["unused"])
    }

    @Test func releasesEachValueAfterItsLastConsumer() throws {
        let graph = sumGraph(key: ExecTest.key())
        let log = EventLog()
        try Executor(events: log.handler).run(graph, plan: ExecTest.plan(graph))
        let trace = log.trace
        func position(_ s: String) -> Int { trace.firstIndex(of: s) ?? -1 }
        // a and b are dropped right after `sum` (their only consumer), before the sink starts.
        #expect(position("value_released:a.value") > position("node_finished:sum"))
        #expect(position("value_released:b.value") > position("node_finished:sum"))
        #expect(position("value_released:a.value") < position("node_started:out"))
        // sum's value is dropped after the sink, and nothing is released twice.
        #expect(position("value_released:sum.sum") > position("node_finished:out"))
        let released = trace.filter { $0.hasPrefix("value_released:") }
        #expect(released.sorted() == ["value_released:a.value", "value_released:b.value", "value_released:sum.sum"])
        #expect(trace.last == "run_finished")
    }

    @Test func unconsumedOutputsAreReleasedAtOnce() throws {
        // test.tensor has two outputs; only `tensor` is read, so `count` goes right after the node.
        let key = ExecTest.key()
        let graph = ExecTest.graph([
            NodeSpec("t", MakeTensorNode.self, params: ["width": .int(3), "key": .string(key)]),
            NodeSpec("s", TensorSumNode.self, inputs: ["tensor": "t.tensor"]),
            NodeSpec("out", SinkNode.self, params: ["key": .string(key)], inputs: ["value": "s"]),
        ])
        let log = EventLog()
        try Executor(events: log.handler).run(graph, plan: ExecTest.plan(graph))
        let trace = log.trace
        let countReleased = try #require(trace.firstIndex(of: "value_released:t.count"))
        #expect(countReleased < trace.firstIndex(of: "node_started:s")!)
        guard let sum = TestRecorder.shared.entries(key: key).first?.value.payload(as: Double.self) else {
            Issue.record("no sum recorded")
            return
        }
        #expect(sum == 3) // 0 + 1 + 2
    }

    @Test func downstreamChangeServesUpstreamFromCache() throws {
        let key = ExecTest.key()
        let cache = MemoryCache(budget: 1 << 20)
        let log = EventLog()
        let executor = Executor(caches: [cache], events: log.handler)
        let first = sumGraph(key: key, offset: 1)
        try executor.run(first, plan: ExecTest.plan(first))
        #expect(log.finished == ["a": false, "b": false, "sum": false, "out": false])

        log.clear()
        let second = sumGraph(key: key, offset: 2)
        let summary = try executor.run(second, plan: ExecTest.plan(second))
        #expect(log.finished == ["a": true, "b": true, "sum": false, "out": false])
        #expect(summary.nodesCached == 2 && summary.nodesRun == 2)
        #expect(summary.cachedNodes == ["a": "memory", "b": "memory"])
        #expect(TestRecorder.shared.runs(key: key) == ["a", "b", "sum", "out", "sum", "out"])
        guard let v = TestRecorder.shared.entries(key: key).last?.value.payload(as: Int.self) else {
            Issue.record("no value recorded")
            return
        }
        #expect(v == 7)
    }

    @Test func repeatedRunRecomputesOnlySideEffectNodes() throws {
        let key = ExecTest.key()
        let log = EventLog()
        let executor = Executor(caches: [MemoryCache(budget: 1 << 20)], events: log.handler)
        let graph = sumGraph(key: key)
        try executor.run(graph, plan: ExecTest.plan(graph))
        log.clear()
        try executor.run(graph, plan: ExecTest.plan(graph))
        // The output node always runs (side effects) and is never cached; the rest comes from cache.
        #expect(log.finished == ["a": true, "b": true, "sum": true, "out": false])
        #expect(TestRecorder.shared.runs(key: key) == ["a", "b", "sum", "out", "out"])
        #expect(TestRecorder.shared.entries(key: key).count == 2)
    }

    @Test func nodeVersionChangeInvalidatesItsEntryAndDownstream() throws {
        let key = ExecTest.key()
        let log = EventLog()
        let executor = Executor(caches: [MemoryCache(budget: 1 << 20)], events: log.handler)
        func graph(_ type: any Node.Type) -> ValidatedGraph {
            ExecTest.graph([
                NodeSpec("v", type, params: ["key": .string(key)]),
                NodeSpec("c", ConstIntNode.self, params: ["value": .int(1), "key": .string(key)]),
                NodeSpec("sum", AddNode.self, inputs: ["a": "v", "b": "c"]),
                NodeSpec("out", SinkNode.self, params: ["key": .string(key)], inputs: ["value": "sum"]),
            ])
        }
        let v1 = graph(VersionedNodeV1.self)
        try executor.run(v1, plan: ExecTest.plan(v1))
        log.clear()
        let v2 = graph(VersionedNodeV2.self)
        try executor.run(v2, plan: ExecTest.plan(v2))
        #expect(log.finished == ["v": false, "c": true, "sum": false, "out": false])
        guard let v = TestRecorder.shared.entries(key: key).last?.value.payload(as: Int.self) else {
            Issue.record("no value recorded")
            return
        }
        #expect(v == 3)
    }

    @Test func fingerprintChangeInvalidatesTheReader() throws {
        let dir = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("prompt.txt")
        try "first".write(to: file, atomically: true, encoding: .utf8)
        let key = ExecTest.key()
        let graph = ExecTest.graph([
            NodeSpec("read", ReadTextNode.self, params: ["path": .string(file.path), "key": .string(key)]),
            NodeSpec("out", SinkNode.self, params: ["key": .string(key)], inputs: ["value": "read"]),
        ])
        let log = EventLog()
        let executor = Executor(caches: [MemoryCache(budget: 1 << 20)], events: log.handler)
        try executor.run(graph, plan: ExecTest.plan(graph))
        log.clear()
        try executor.run(graph, plan: ExecTest.plan(graph))
        #expect(log.finished["read"] == true)

        try "second".write(to: file, atomically: true, encoding: .utf8)
        log.clear()
        try executor.run(graph, plan: ExecTest.plan(graph))
        #expect(log.finished["read"] == false)
        guard let text = TestRecorder.shared.entries(key: key).last?.value.payload(as: String.self) else {
            Issue.record("no text recorded")
            return
        }
        #expect(text == "second")
    }

    @Test func fingerprintFailureNamesTheNodeAndRunsNothing() throws {
        let key = ExecTest.key()
        let graph = ExecTest.graph([
            NodeSpec("c", ConstIntNode.self, params: ["key": .string(key)]),
            NodeSpec("read", ReadTextNode.self, params: ["path": .string("/nonexistent/prompt.txt")]),
            NodeSpec("out", SinkNode.self, params: ["key": .string(key)], inputs: ["value": "read", "extra": "c"]),
        ])
        let log = EventLog()
        let error = #expect(throws: NodeRunError.self) {
            try Executor(events: log.handler).run(graph, plan: ExecTest.plan(graph))
        }
        #expect(error?.nodeID == "read")
        #expect(error?.category == .io)
        #expect(error?.description.contains("/nonexistent/prompt.txt") == true)
        #expect(TestRecorder.shared.runs(key: key).isEmpty)
        #expect(log.trace == ["run_started", "node_failed:read", "run_finished"])
        #expect(log.summary?.exitCode == ErrorCategory.io.exitCode)
    }

    @Test func cancellationBetweenNodesStopsBeforeTheNextNode() throws {
        let key = ExecTest.key()
        let graph = ExecTest.graph([
            NodeSpec("a", ConstIntNode.self, params: ["value": .int(1), "key": .string(key)]),
            NodeSpec("stop", CancelNode.self, params: ["key": .string(key)], inputs: ["x": "a"]),
            NodeSpec("after", AddNode.self, params: ["key": .string(key)], inputs: ["a": "stop"]),
            NodeSpec("out", SinkNode.self, params: ["key": .string(key)], inputs: ["value": "after"]),
        ])
        let log = EventLog()
        let token = CancellationToken()
        #expect(throws: ExecutorError.interrupted) {
            try Executor(cancellation: token, events: log.handler).run(graph, plan: ExecTest.plan(graph))
        }
        #expect(TestRecorder.shared.runs(key: key) == ["a", "stop"])
        #expect(TestRecorder.shared.entries(key: key).isEmpty)
        #expect(log.summary?.ok == false)
        #expect(log.summary?.exitCode == 130)
        #expect(!log.trace.contains("node_started:after"))
    }

    @Test func cancellationAtAProgressPointInterruptsTheNode() throws {
        let key = ExecTest.key()
        let graph = ExecTest.graph([
            NodeSpec("count", StepsNode.self, params: ["steps": .int(10), "cancel_at": .int(3), "key": .string(key)]),
            NodeSpec("out", SinkNode.self, params: ["key": .string(key)], inputs: ["value": "count"]),
        ])
        let log = EventLog()
        let error = #expect(throws: NodeRunError.self) {
            try Executor(events: log.handler).run(graph, plan: ExecTest.plan(graph))
        }
        #expect(error?.category == .interrupted)
        #expect(error?.underlying as? NodeError == .cancelled)
        #expect(TestRecorder.shared.runs(key: key) == ["count"])
        let progress = log.all.compactMap { e -> Int? in
            if case .nodeProgress("count", let done, 10) = e { return done }
            return nil
        }
        #expect(progress == [1, 2, 3])
        let failure = log.all.compactMap { e -> ErrorCategory? in
            if case .nodeFailed("count", _, _, let c) = e { return c }
            return nil
        }
        #expect(failure == [.interrupted])
        #expect(log.summary?.exitCode == 130)
    }

    @Test func alreadyCancelledTokenRunsNothing() throws {
        let key = ExecTest.key()
        let graph = sumGraph(key: key)
        let token = CancellationToken()
        token.cancel()
        #expect(throws: ExecutorError.interrupted) {
            try Executor(cancellation: token).run(graph, plan: ExecTest.plan(graph))
        }
        #expect(TestRecorder.shared.runs(key: key).isEmpty)
    }

    @Test func failingNodeEmitsFailureAndStopsTheRun() throws {
        let key = ExecTest.key()
        let graph = ExecTest.graph([
            NodeSpec("a", ConstIntNode.self, params: ["key": .string(key)]),
            NodeSpec("boom", FailNode.self, params: ["message": .string("weights are upside down"),
                                                     "key": .string(key)], inputs: ["x": "a"]),
            NodeSpec("out", SinkNode.self, params: ["key": .string(key)], inputs: ["value": "boom"]),
        ])
        let log = EventLog()
        let error = #expect(throws: NodeRunError.self) {
            try Executor(events: log.handler).run(graph, plan: ExecTest.plan(graph))
        }
        #expect(error?.nodeID == "boom")
        #expect(error?.typeName == "test.fail")
        #expect(error?.category == .nodeFailed)
        #expect(error?.description == "node 'boom': weights are upside down")
        #expect(TestRecorder.shared.runs(key: key) == ["a", "boom"])
        let failures = log.all.compactMap { e -> String? in
            if case .nodeFailed("boom", "test.fail", let message, .nodeFailed) = e { return message }
            return nil
        }
        #expect(failures == ["node 'boom': weights are upside down"])
        #expect(log.summary?.ok == false)
        #expect(log.summary?.exitCode == 3)
        #expect(log.summary?.error?.contains("weights are upside down") == true)
    }

    @Test func uncategorizedErrorsCountAsNodeFailures() throws {
        let graph = ExecTest.graph([
            NodeSpec("t", ThrowNode.self),
            NodeSpec("out", SinkNode.self, inputs: ["value": "t"]),
        ])
        let error = #expect(throws: NodeRunError.self) { try Executor().run(graph, plan: ExecTest.plan(graph)) }
        #expect(error?.category == .nodeFailed)
        #expect(error?.category.exitCode == 3)
        #expect(error?.description == "node 't' (exec.throw): something odd happened")
    }

    @Test func modelFileErrorsKeepTheirCategory() throws {
        let graph = ExecTest.graph([
            NodeSpec("t", ThrowNode.self, params: ["kind": .string("model")]),
            NodeSpec("out", SinkNode.self, inputs: ["value": "t"]),
        ])
        let error = #expect(throws: NodeRunError.self) { try Executor().run(graph, plan: ExecTest.plan(graph)) }
        #expect(error?.category == .modelFile)
        #expect(error?.category.exitCode == 4)
        #expect(error?.description.contains("/models/x.safetensors: truncated header") == true)
    }

    @Test(arguments: [
        ("wrong_type", "output 'value' is String, declared Int"),
        ("missing", "did not produce its declared output 'value' (Int)"),
        ("extra", "produced undeclared output 'surprise'"),
    ])
    func brokenOutputContractsNameTheNode(mode: String, expected: String) throws {
        let graph = ExecTest.graph([
            NodeSpec("bad", BadOutputNode.self, params: ["mode": .string(mode)]),
            NodeSpec("out", SinkNode.self, inputs: ["value": "bad"]),
        ])
        let error = #expect(throws: NodeRunError.self) { try Executor().run(graph, plan: ExecTest.plan(graph)) }
        #expect(error?.nodeID == "bad")
        #expect(error?.category == .nodeFailed)
        #expect(error?.description.contains(expected) == true, "\(String(describing: error))")
        #expect(error?.description.contains("node 'bad'") == true)
    }

    @Test func runInfoCarriesVersionsFingerprintsAndParams() throws {
        let dir = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("p.txt")
        try "hello".write(to: file, atomically: true, encoding: .utf8)
        let key = ExecTest.key()
        let graph = ExecTest.graph([
            NodeSpec("read", ReadTextNode.self, params: ["path": .string(file.path)]),
            NodeSpec("probe", ProbeNode.self, params: ["key": .string(key)], inputs: ["value": "read"]),
        ])
        let info = RunInfo(graphFile: "g.yaml", graphSource: "sanagraph: 1", params: ["seed": .int(7)],
                           writeMetadata: false)
        try Executor().run(graph, plan: ExecTest.plan(graph), info: info)
        let seen = try #require(probedRunInfo.withLock { $0[key] })
        #expect(seen.graphFile == "g.yaml" && seen.graphSource == "sanagraph: 1")
        #expect(seen.params == ["seed": .int(7)])
        #expect(seen.writeMetadata == false)
        #expect(seen.nodeVersions == ["test.read_text": 1, "exec.probe": 3])
        let expectedFingerprint = try ReadTextNode().fingerprint(params: graph.node("read")!.params)
        #expect(seen.fingerprints == ["read": expectedFingerprint!])
    }

    @Test func previewReportsWhatWouldComeFromCache() throws {
        let key = ExecTest.key()
        let executor = Executor(caches: [MemoryCache(budget: 1 << 20)])
        let graph = sumGraph(key: key)
        let plan = ExecTest.plan(graph)
        let before = try executor.preview(graph, plan: plan)
        #expect(before.map(\.cachedIn) == [nil, nil, nil, nil])
        #expect(TestRecorder.shared.runs(key: key).isEmpty) // previewing runs nothing
        try executor.run(graph, plan: plan)
        let after = try executor.preview(graph, plan: plan)
        #expect(after.map(\.step.node) == ["a", "b", "sum", "out"])
        #expect(after.map(\.cachedIn) == ["memory", "memory", "memory", nil])
        #expect(after.map(\.hasSideEffects) == [false, false, false, true])
        #expect(after.map(\.key) == before.map(\.key))
    }

    @Test func inconsistentPlanIsReportedNotCrashed() throws {
        let graph = sumGraph(key: ExecTest.key())
        // `sum` before its inputs.
        let plan = ExecutionPlan(steps: [.init(node: "sum", releaseAfter: []), .init(node: "out", releaseAfter: [])],
                                 pruned: [])
        let error = #expect(throws: ExecutorError.self) { try Executor().run(graph, plan: plan) }
        guard case .inconsistentPlan(let message)? = error else { return }
        #expect(message.contains("'sum'"))
    }
}
