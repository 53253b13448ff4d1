import SanaGraphKit

/// Orders a validated graph for execution.
public enum Planner {
    /// Only ancestors of output (side-effect) nodes run, in deterministic dependency order (ties broken by
    /// file order: among the nodes whose inputs are ready, the one written first runs first); each
    /// `Step.releaseAfter` lists the values whose last consumer is that step. Outputs nobody in the plan
    /// consumes are released right after the step that produced them.
    public static func plan(_ graph: ValidatedGraph) -> ExecutionPlan {
        let nodes = graph.nodes
        let indexOf = Dictionary(nodes.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { a, _ in a })
        let producers: [Set<Int>] = nodes.map { Set($0.inputs.values.compactMap { indexOf[$0.node] }) }

        // Ancestors of the output nodes.
        var needed = Set<Int>()
        var stack = nodes.indices.filter { nodes[$0].descriptor.hasSideEffects }
        while let i = stack.popLast() {
            guard needed.insert(i).inserted else { continue }
            stack.append(contentsOf: producers[i])
        }

        // Kahn's algorithm, always taking the ready node that comes first in the file.
        var waiting = [Int](repeating: 0, count: nodes.count)
        var consumers = [[Int]](repeating: [], count: nodes.count)
        for i in needed {
            waiting[i] = producers[i].count
            for p in producers[i] { consumers[p].append(i) }
        }
        var ready = needed.filter { waiting[$0] == 0 }.sorted()
        var order: [Int] = []
        while !ready.isEmpty {
            let i = ready.removeFirst()
            order.append(i)
            for c in consumers[i] {
                waiting[c] -= 1
                if waiting[c] == 0 {
                    let at = ready.firstIndex { $0 > c } ?? ready.count
                    ready.insert(c, at: at)
                }
            }
        }
        // A validated graph has no cycles; should one slip through, keep the remaining nodes in file order
        // rather than dropping them (the executor then reports the missing input).
        if order.count < needed.count {
            let placed = Set(order)
            order += needed.subtracting(placed).sorted()
        }

        // Liveness: the last step that consumes each output.
        var position = [Int: Int]()
        for (step, i) in order.enumerated() { position[i] = step }
        var lastUse: [OutputRef: Int] = [:]
        for (step, i) in order.enumerated() {
            for ref in nodes[i].inputs.values { lastUse[ref] = max(lastUse[ref] ?? step, step) }
        }
        var releases = [[OutputRef]](repeating: [], count: order.count)
        for (step, i) in order.enumerated() {
            for output in nodes[i].descriptor.outputs {
                let ref = OutputRef(node: nodes[i].id, output: output.name)
                releases[lastUse[ref] ?? step].append(ref)
            }
        }
        // Deterministic order within a step: producer's file position, then the output's declared position.
        func rank(_ ref: OutputRef) -> (Int, Int) {
            let i = indexOf[ref.node] ?? 0
            return (i, nodes[i].descriptor.outputs.firstIndex { $0.name == ref.output } ?? 0)
        }
        let steps = order.enumerated().map { step, i in
            ExecutionPlan.Step(node: nodes[i].id, releaseAfter: releases[step].sorted { rank($0) < rank($1) })
        }
        let pruned = nodes.indices.filter { !needed.contains($0) }.map { nodes[$0].id }
        return ExecutionPlan(steps: steps, pruned: pruned)
    }
}

extension ExecutionPlan {
    /// The node ids in execution order.
    public var order: [String] { steps.map(\.node) }
}
