import Foundation
import GraphRuntime
import Testing
import TestSupport

@Suite struct EventTests {
    func parse(_ line: String) throws -> [String: Any] {
        #expect(!line.contains("\n"))
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8))
        return try #require(object as? [String: Any])
    }

    @Test func everyEventIsOneJSONObjectWithEventFirst() throws {
        let summary = RunSummary(ok: false, seconds: 1.5, nodesRun: 2, nodesCached: 1, exitCode: 3, error: "bad\nthing")
        let events: [RunEvent] = [
            .runStarted(graph: "g.yaml", steps: 3, pruned: ["x"]),
            .nodeStarted(node: "a", type: "t.a", index: 1, total: 3),
            .nodeProgress(node: "a", completed: 2, total: 20),
            .nodeFinished(node: "a", type: "t.a", seconds: 0.25, cachedFrom: nil),
            .nodeFinished(node: "b", type: "t.b", seconds: 0.001, cachedFrom: "memory"),
            .nodeFailed(node: "c", type: "t.c", message: "said \"no\"", category: .modelFile),
            .valueReleased(OutputRef(node: "a", output: "value")),
            .runFinished(summary),
        ]
        for event in events {
            let line = event.jsonLine
            #expect(line.hasPrefix("{\"event\":\"\(event.name)\""))
            let object = try parse(line)
            #expect(object["event"] as? String == event.name)
        }
        let started = try parse(events[0].jsonLine)
        #expect(started["graph"] as? String == "g.yaml")
        #expect(started["pruned"] as? [String] == ["x"])
        let progress = try parse(events[2].jsonLine)
        #expect(progress["node"] as? String == "a")
        #expect(progress["completed"] as? Int == 2 && progress["total"] as? Int == 20)
        let ran = try parse(events[3].jsonLine)
        #expect(ran["cached"] as? Bool == false && ran["seconds"] as? Double == 0.25)
        #expect(ran["cache"] == nil)
        let cached = try parse(events[4].jsonLine)
        #expect(cached["cached"] as? Bool == true && cached["cache"] as? String == "memory")
        let failed = try parse(events[5].jsonLine)
        #expect(failed["message"] as? String == "said \"no\"")
        #expect(failed["category"] as? String == "model_file" && failed["exit_code"] as? Int == 4)
        let released = try parse(events[6].jsonLine)
        #expect(released["node"] as? String == "a" && released["output"] as? String == "value")
        let finished = try parse(events[7].jsonLine)
        #expect(finished["ok"] as? Bool == false && finished["exit_code"] as? Int == 3)
        #expect(finished["nodes_run"] as? Int == 2 && finished["nodes_cached"] as? Int == 1)
        #expect(finished["error"] as? String == "bad\nthing")
    }

    @Test func controlCharactersAreEscaped() throws {
        let text = "tab\there\u{1}\r\n\\ end ünïcødé"
        let line = RunEvent.nodeFailed(node: "n", type: "t", message: text, category: .nodeFailed).jsonLine
        #expect(!line.contains("\n") && !line.contains("\r") && !line.contains("\u{1}"))
        #expect(try parse(line)["message"] as? String == text)
    }

    @Test func categoriesHaveStableNamesAndExitCodes() {
        let expected: [(ErrorCategory, String, Int32)] = [
            (.invalidGraph, "invalid_graph", 2), (.nodeFailed, "node_failed", 3), (.modelFile, "model_file", 4),
            (.lockHeld, "lock_held", 5), (.io, "io", 6), (.interrupted, "interrupted", 130),
        ]
        for (category, name, code) in expected {
            #expect(category.name == name)
            #expect(category.exitCode == code)
        }
    }

    @Test func aRunEmitsStartedFinishedAndASummaryInOrder() throws {
        let key = ExecTest.key()
        let graph = ExecTest.graph([
            NodeSpec("count", StepsNode.self, params: ["steps": .int(3), "key": .string(key)]),
            NodeSpec("out", SinkNode.self, params: ["key": .string(key)], inputs: ["value": "count"]),
        ])
        let log = EventLog()
        try Executor(events: log.handler).run(graph, plan: ExecTest.plan(graph))
        let names = log.all.map(\.name)
        #expect(names == ["run_started", "node_started", "node_progress", "node_progress", "node_progress",
                          "node_finished", "node_started", "node_finished", "value_released", "run_finished"])
        guard case .nodeStarted("out", "test.sink", 2, 2) = log.all[6] else {
            Issue.record("unexpected \(log.all[6])")
            return
        }
        let summary = try #require(log.summary)
        #expect(summary.ok && summary.exitCode == 0 && summary.error == nil)
        #expect(summary.seconds >= 0)
    }
}
