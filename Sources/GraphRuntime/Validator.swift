import SanaGraphKit
import Yams

// Stage 3 of loading: node types, node params, inputs and edges, cycles, output nodes and unused params are
// checked against the registry. Every problem is reported (nothing stops at the first error); a problem that
// makes a later check meaningless (an unknown node type, a broken graph param) silences that check instead of
// producing a second error for the same mistake.

enum Validator {
    /// Validates `raw` with graph params from `scope`. Returns the graph when no error was found.
    static func validate(_ raw: RawGraph, registry: NodeRegistry, scope: inout ParamScope, source: String,
                         diagnostics: inout DiagnosticList) -> ValidatedGraph? {
        let file = raw.file
        let ids = raw.nodes.map(\.id)
        let indexOf = Dictionary(raw.nodes.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { a, _ in a })
        let types: [(any SanaGraphKit.Node.Type)?] = raw.nodes.map { n in n.typeName.flatMap { registry.nodeType(named: $0) } }
        var anyUnknownType = false

        // Packs the graph requires, then node types (naming the missing packs).
        let loadHint = "load it with --plugin PATH or a folder in SANAGRAPH_PLUGIN_PATH (docs/plugins.md)"
        let missingPacks = raw.requires.filter { !registry.hasPack(named: $0.name) }
        for pack in missingPacks {
            diagnostics.error("the graph requires node pack '\(pack.name)', which is not loaded; \(loadHint)",
                              at: pack.location)
        }
        for (i, node) in raw.nodes.enumerated() {
            guard let typeName = node.typeName else { anyUnknownType = true; continue }
            if types[i] == nil {
                anyUnknownType = true
                let hint: String
                if !missingPacks.isEmpty {
                    let names = missingPacks.map { "'\($0.name)'" }.joined(separator: ", ")
                    hint = " (probably from the required pack\(missingPacks.count > 1 ? "s" : "") \(names), not loaded)"
                } else if let close = Suggestions.closest(to: typeName, in: registry.typeNames) {
                    hint = " (did you mean '\(close)'?)"
                } else {
                    hint = " (run 'sanagraph nodes' to list the node types; a type from a plugin needs the plugin: "
                        + "\(loadHint))"
                }
                diagnostics.error("unknown node type '\(typeName)'\(hint)", at: node.typeLocation, node: node.id)
            }
        }

        // Params.
        var params: [ParamValues] = Array(repeating: ParamValues(), count: raw.nodes.count)
        for (i, node) in raw.nodes.enumerated() {
            guard let type = types[i] else {
                // Still resolve `${...}` so misspelt graph params are reported and used params are counted.
                for p in node.params {
                    _ = scope.substitute(p.value, file: file, nodeID: node.id, paramName: p.name,
                                         diagnostics: &diagnostics)
                }
                continue
            }
            params[i] = checkParams(node, type: type, file: file, scope: &scope, diagnostics: &diagnostics)
        }

        // Inputs and edges.
        var inputs: [[String: OutputRef]] = Array(repeating: [:], count: raw.nodes.count)
        for (i, node) in raw.nodes.enumerated() {
            let descriptor = types[i]?.descriptor
            let socketNames = descriptor?.inputs.map(\.name) ?? []
            for input in node.inputs {
                let spec = descriptor?.inputs.first { $0.name == input.socket }
                if let descriptor, spec == nil {
                    diagnostics.error("unknown input '\(input.socket)' for \(descriptor.typeName)"
                                      + Suggestions.didYouMeanOrList(input.socket, in: socketNames, noun: "its inputs"),
                                      at: input.socketLocation, node: node.id)
                }
                guard let reference = input.reference else { continue }
                guard let ref = resolveReference(reference, input: input, raw: raw, ids: ids, indexOf: indexOf,
                                                 types: types, diagnostics: &diagnostics, nodeID: node.id)
                else { continue }
                // Type check when both ends are known.
                if let spec, let producer = indexOf[ref.node].flatMap({ types[$0] }),
                   let output = producer.descriptor.outputs.first(where: { $0.name == ref.output }),
                   !spec.accepts.contains(output.type) {
                    diagnostics.error("input '\(input.socket)' of \(descriptor?.typeName ?? "") accepts "
                                      + spec.accepts.map(\.name).joined(separator: " or ")
                                      + ", but '\(ref)' is \(output.type)", at: input.referenceLocation, node: node.id)
                }
                if spec != nil { inputs[i][input.socket] = ref }
            }
            if let descriptor, !node.inputsMalformed {
                let given = Set(node.inputs.map(\.socket))
                for spec in descriptor.inputs where !spec.optional && !given.contains(spec.name) {
                    diagnostics.error("missing required input '\(spec.name)' ("
                                      + spec.accepts.map(\.name).joined(separator: " or ")
                                      + ") of \(descriptor.typeName)", at: node.location, node: node.id)
                }
            }
        }

        // Cycles, over the edges that resolved.
        for cycle in findCycles(count: raw.nodes.count, producers: inputs.map { Set($0.values.compactMap { indexOf[$0.node] }) }) {
            let shown = GraphLimits.maxCycleNodesShown
            var path = (cycle.prefix(shown) + [cycle[0]]).map { raw.nodes[$0].id }.joined(separator: " -> ")
            if cycle.count > shown {
                path = cycle.prefix(shown).map { raw.nodes[$0].id }.joined(separator: " -> ")
                    + " -> … (\(cycle.count) nodes in all) -> \(raw.nodes[cycle[0]].id)"
            }
            diagnostics.error("cycle: \(path) (each node feeds the next; a node cannot depend on its own output)",
                              at: raw.nodes[cycle[0]].location, node: raw.nodes[cycle[0]].id)
        }

        // Output nodes. With an unknown type we can't tell whether it was meant to be the output.
        if raw.hasNodesKey && !anyUnknownType && !types.contains(where: { $0?.descriptor.hasSideEffects == true }) {
            let outputs = registry.descriptors.filter(\.hasSideEffects).map(\.typeName)
            let examples = outputs.isEmpty ? "" : " such as " + outputs.prefix(4).joined(separator: ", ")
            diagnostics.error("the graph has no output node, so nothing would run: add a node with side effects"
                              + examples, at: raw.nodesLocation)
        }

        // Unused graph params.
        for name in scope.order where !scope.used.contains(name) {
            diagnostics.warning("graph param '\(name)' is declared but no node uses it (refer to it as ${\(name)})",
                                at: scope.declared[name]?.location ?? raw.params.first { $0.name == name }?.location)
        }

        guard !diagnostics.hasErrors else { return nil }
        var nodes: [GraphNode] = []
        for (i, node) in raw.nodes.enumerated() {
            guard let type = types[i] else { return nil }
            nodes.append(GraphNode(id: node.id, type: type, params: params[i], inputs: inputs[i],
                                   location: node.location))
        }
        return ValidatedGraph(file: file, description: raw.description, nodes: nodes, params: scope.values,
                              warnings: [], source: source,
                              parameters: scope.order.compactMap { scope.declared[$0] })
    }

    /// Checks the params of a node of known type; returns them with defaults filled in.
    private static func checkParams(_ node: RawNode, type: any SanaGraphKit.Node.Type, file: String, scope: inout ParamScope,
                                    diagnostics: inout DiagnosticList) -> ParamValues {
        let descriptor = type.descriptor
        let before = diagnostics.errorCount
        var values: [String: ParamValue] = [:]
        var unresolved = false
        for p in node.params {
            guard let spec = descriptor.params.first(where: { $0.name == p.name }) else {
                diagnostics.error("unknown param '\(p.name)' for \(descriptor.typeName)"
                                  + Suggestions.didYouMeanOrList(p.name, in: descriptor.params.map(\.name),
                                                                 noun: "its params"),
                                  at: p.keyLocation, node: node.id)
                _ = scope.substitute(p.value, file: file, nodeID: node.id, paramName: p.name, diagnostics: &diagnostics)
                continue
            }
            let at = p.value.mark == nil ? p.keyLocation : location(p.value, file: file)  // nil: a --device-style default
            guard case .scalar = p.value else {
                diagnostics.error("param '\(p.name)' must be a single value (\(spec.type)), got \(yamlKind(p.value))",
                                  at: at, node: node.id)
                continue
            }
            guard let operand = scope.substitute(p.value, file: file, nodeID: node.id, paramName: p.name,
                                                 diagnostics: &diagnostics) else {
                unresolved = true
                continue
            }
            switch convert(operand, to: spec.type) {
            case .failure(let e):
                diagnostics.error("param '\(p.name)': \(e.message)", at: at, node: node.id)
            case .success(let value):
                if let problem = rangeProblem(value, min: spec.min, max: spec.max) {
                    let origin = operand.fromParam.map { " (from ${\($0)})" } ?? ""
                    diagnostics.error("param '\(p.name)': \(problem)\(origin)", at: at, node: node.id)
                } else {
                    values[p.name] = value
                }
            }
        }
        for spec in descriptor.params where values[spec.name] == nil {
            if let d = spec.defaultValue {
                values[spec.name] = d
            } else if !node.params.contains(where: { $0.name == spec.name }) && !node.paramsMalformed {
                diagnostics.error("missing required param '\(spec.name)' (\(spec.type)) of \(descriptor.typeName)",
                                  at: node.location, node: node.id)
            }
        }
        let resolved = ParamValues(values)
        // The node's own checks need every param to be valid; otherwise they would see defaults or gaps.
        if diagnostics.errorCount == before && !unresolved {
            for message in type.init().validate(params: resolved, connectedInputs: Set(node.inputs.map(\.socket))) {
                diagnostics.error(message, at: node.location, node: node.id)
            }
        }
        return resolved
    }

    /// Parses `node` or `node.output` and checks that it names an existing output.
    private static func resolveReference(_ reference: String, input: RawInput, raw: RawGraph, ids: [String],
                                         indexOf: [String: Int], types: [(any SanaGraphKit.Node.Type)?],
                                         diagnostics: inout DiagnosticList, nodeID: String) -> OutputRef? {
        let at = input.referenceLocation
        let parts = reference.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let producerID = parts[0]
        guard !producerID.isEmpty else {
            diagnostics.error("input '\(input.socket)': '\(reference)' is not a reference; write 'node' or "
                              + "'node.output'", at: at, node: nodeID)
            return nil
        }
        guard let index = indexOf[producerID] else {
            diagnostics.error("input '\(input.socket)' refers to unknown node '\(producerID)'"
                              + Suggestions.didYouMean(producerID, in: ids), at: at, node: nodeID)
            return nil
        }
        guard let producer = types[index]?.descriptor else { return nil }  // its unknown type was reported
        let outputs = producer.outputs.map(\.name)
        if parts.count == 2 {
            guard outputs.contains(parts[1]) else {
                diagnostics.error("input '\(input.socket)' refers to '\(reference)', but \(producer.typeName) has no "
                                  + "output '\(parts[1])'"
                                  + Suggestions.didYouMeanOrList(parts[1], in: outputs, noun: "its outputs"),
                                  at: at, node: nodeID)
                return nil
            }
            return OutputRef(node: producerID, output: parts[1])
        }
        switch outputs.count {
        case 1:
            return OutputRef(node: producerID, output: outputs[0])
        case 0:
            diagnostics.error("input '\(input.socket)' refers to node '\(producerID)' (\(producer.typeName)), "
                              + "which has no outputs", at: at, node: nodeID)
        default:
            diagnostics.error("input '\(input.socket)' refers to node '\(producerID)', which has several outputs ("
                              + outputs.joined(separator: ", ") + "): write "
                              + outputs.map { "'\(producerID).\($0)'" }.joined(separator: " or "), at: at, node: nodeID)
        }
        return nil
    }

    /// One cycle per strongly connected component that has one (Tarjan), each starting at its earliest node in
    /// file order and following data flow (producer -> consumer) along a shortest way back to it.
    static func findCycles(count: Int, producers: [Set<Int>]) -> [[Int]] {
        var consumers = Array(repeating: [Int](), count: count)
        for (c, ps) in producers.enumerated() { for p in ps { consumers[p].append(c) } }
        for i in 0..<count { consumers[i].sort() }

        var index = 0
        var indices = Array(repeating: -1, count: count), low = Array(repeating: 0, count: count)
        var onStack = Array(repeating: false, count: count), stack: [Int] = []
        var components: [[Int]] = []
        // Iterative Tarjan so deep graphs cannot overflow the stack.
        for root in 0..<count where indices[root] < 0 {
            var work: [(node: Int, next: Int)] = [(root, 0)]
            indices[root] = index; low[root] = index; index += 1
            stack.append(root); onStack[root] = true
            while let (v, n) = work.popLast() {
                var next = n
                if next < consumers[v].count {
                    let w = consumers[v][next]
                    next += 1
                    work.append((v, next))
                    if indices[w] < 0 {
                        indices[w] = index; low[w] = index; index += 1
                        stack.append(w); onStack[w] = true
                        work.append((w, 0))
                    } else if onStack[w] {
                        low[v] = min(low[v], indices[w])
                    }
                    continue
                }
                if low[v] == indices[v] {
                    var component: [Int] = []
                    while let w = stack.popLast() {
                        onStack[w] = false
                        component.append(w)
                        if w == v { break }
                    }
                    if component.count > 1 || consumers[v].contains(v) { components.append(component.sorted()) }
                }
                if let parent = work.last { low[parent.node] = min(low[parent.node], low[v]) }
            }
        }
        var cycles: [[Int]] = []
        for component in components.sorted(by: { $0[0] < $1[0] }) {
            let members = Set(component)
            let start = component[0]
            // Breadth-first search for the shortest way back to `start` inside the component (iterative, so
            // long cycles can't overflow the stack).
            var parent: [Int: Int] = [:]
            var queue = [start], head = 0
            var last: Int?
            search: while head < queue.count {
                let v = queue[head]
                head += 1
                for w in consumers[v] where members.contains(w) {
                    if w == start { last = v; break search }
                    if parent[w] == nil && w != start {
                        parent[w] = v
                        queue.append(w)
                    }
                }
            }
            var path: [Int] = []
            var cursor = last
            while let v = cursor, v != start {
                path.append(v)
                cursor = parent[v]
            }
            path.append(start)
            path.reverse()
            let found = last != nil
            if found { cycles.append(path) }
        }
        return cycles
    }
}
