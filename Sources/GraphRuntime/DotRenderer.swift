import SanaGraphKit

/// Renders a graph as GraphViz `dot` text (`sanagraph dot g.yaml | dot -Tpng > g.png`).
public enum DotRenderer {
    /// One box per node (`id`, type, and the step number when a plan is given), one edge per connection
    /// labelled `output -> input`. Output nodes are drawn bold; nodes the plan prunes are grey and dashed.
    public static func render(_ graph: ValidatedGraph, plan: ExecutionPlan?) -> String {
        var stepOf: [String: Int] = [:]
        for (i, step) in (plan?.steps ?? []).enumerated() { stepOf[step.node] = i + 1 }
        let pruned = Set(plan?.pruned ?? [])
        var lines = ["digraph \(quote(graph.file)) {", "  rankdir=LR;",
                     "  node [shape=box, style=rounded, fontname=\"Helvetica\"];",
                     "  edge [fontname=\"Helvetica\", fontsize=10];"]
        for node in graph.nodes {
            let d = node.descriptor
            var label = "\(node.id)\n\(d.typeName)"
            if let step = stepOf[node.id] { label = "\(step). " + label }
            var attributes = ["label=\(quote(label))"]
            if d.hasSideEffects { attributes.append("style=\"rounded,bold\""); attributes.append("penwidth=2") }
            if pruned.contains(node.id) {
                attributes.append("style=\"rounded,dashed\"")
                attributes.append("color=gray")
                attributes.append("fontcolor=gray")
            }
            lines.append("  \(quote(node.id)) [\(attributes.joined(separator: ", "))];")
        }
        for node in graph.nodes {
            // Inputs in declaration order, so the text is stable.
            for input in node.descriptor.inputs {
                guard let ref = node.inputs[input.name] else { continue }
                lines.append("  \(quote(ref.node)) -> \(quote(node.id)) [label=\(quote("\(ref.output) -> \(input.name)"))];")
            }
        }
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }

    /// A double-quoted dot ID with `"` and `\` escaped and newlines as `\n`.
    static func quote(_ s: String) -> String {
        var out = "\""
        for c in s {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out + "\""
    }
}
