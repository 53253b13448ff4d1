import Foundation
import GraphRuntime
import Testing
import TestSupport

@Suite struct SchemaTests {
    let registry = TestNodesPack.registry()

    func schema() throws -> [String: Any] {
        let text = GraphSchema.jsonSchema(registry: registry)
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8))
        return try #require(object as? [String: Any])
    }

    @Test func schemaIsValidJSONListingEveryNodeType() throws {
        let root = try schema()
        #expect(root["$schema"] as? String == "http://json-schema.org/draft-07/schema#")
        #expect(root["required"] as? [String] == ["sanagraph", "nodes"])
        let definitions = try #require(root["definitions"] as? [String: Any])
        let node = try #require(definitions["node"] as? [String: Any])
        let properties = try #require(node["properties"] as? [String: Any])
        let type = try #require(properties["type"] as? [String: Any])
        #expect(type["enum"] as? [String] == registry.typeNames)
        for name in registry.typeNames {
            #expect(definitions["node:\(name)"] != nil, "no schema for \(name)")
        }
        #expect((node["allOf"] as? [Any])?.count == registry.typeNames.count)
    }

    @Test func nodeSchemaCarriesParamsRangesChoicesAndInputs() throws {
        let definitions = try #require(try schema()["definitions"] as? [String: Any])
        let tensor = try #require(definitions["node:test.tensor"] as? [String: Any])
        let props = try #require(tensor["properties"] as? [String: Any])
        let params = try #require(props["params"] as? [String: Any])
        #expect(params["additionalProperties"] as? Bool == false)
        let paramProps = try #require(params["properties"] as? [String: Any])
        let width = try #require(paramProps["width"] as? [String: Any])
        let widthAlternatives = try #require(width["anyOf"] as? [[String: Any]])
        #expect(widthAlternatives[0]["type"] as? String == "integer")
        #expect(widthAlternatives[0]["minimum"] as? Int == 1)
        #expect(widthAlternatives[0]["maximum"] as? Int == 1024)
        #expect(widthAlternatives[0]["default"] as? Int == 4)
        #expect(widthAlternatives[1]["$ref"] as? String == "#/definitions/substitution")

        let combine = try #require(definitions["node:test.combine"] as? [String: Any])
        let cprops = try #require(combine["properties"] as? [String: Any])
        let cparams = try #require((cprops["params"] as? [String: Any])?["properties"] as? [String: Any])
        let mode = try #require((cparams["mode"] as? [String: Any])?["anyOf"] as? [[String: Any]])
        #expect(mode[0]["enum"] as? [String] == ["sum", "product", "max", "divide"])
        let inputs = try #require(cprops["inputs"] as? [String: Any])
        #expect(inputs["required"] as? [String] == ["a", "b"])

        let text = try #require(definitions["node:test.const_string"] as? [String: Any])
        let tparams = try #require((text["properties"] as? [String: Any])?["params"] as? [String: Any])
        #expect(tparams["required"] as? [String] == ["text"])
    }

    @Test func schemaTextIsStable() {
        #expect(GraphSchema.jsonSchema(registry: registry) == GraphSchema.jsonSchema(registry: registry))
    }
}

@Suite struct DotRendererTests {
    @Test func dotOutputHasNodesEdgesAndPlanMarks() throws {
        let registry = TestNodesPack.registry()
        let graph = try GraphLoader.load(file: TestSupport.fixture("Graphs/valid/pipeline.yaml"), registry: registry)
        let dot = DotRenderer.render(graph, plan: Planner.plan(graph))
        #expect(dot.hasPrefix("digraph "))
        #expect(dot.hasSuffix("}\n"))
        #expect(dot.contains("\"hello\" -> \"greeting\" [label=\"text -> a\"];"))
        #expect(dot.contains("\"who\" -> \"greeting\" [label=\"text -> b\"];"))
        #expect(dot.contains("\"grid\" -> \"total\" [label=\"count -> b\"];"))
        #expect(dot.contains("\"grid\" -> \"tensor_out\" [label=\"tensor -> value\"];"))
        #expect(dot.contains("\"first\" -> \"unused\" [label=\"value -> a\"];"))
        let edgeCount = dot.split(separator: "\n").filter { $0.contains(" -> \"") && $0.contains("[label=") }.count
        #expect(edgeCount == graph.nodes.reduce(0) { $0 + $1.inputs.count })
        #expect(dot.contains("\"hello\" [label=\"1. hello\\ntest.const_string\"];"))
        #expect(dot.contains("\"unused\" [label=\"unused\\ntest.add\", style=\"rounded,dashed\", color=gray, fontcolor=gray];"))
        #expect(dot.contains("\"report\" [label=\"8. report\\ntest.sink\", style=\"rounded,bold\", penwidth=2];"))
    }

    @Test func dotQuotesIds() {
        #expect(DotRenderer.render(ValidatedGraph(file: "a\"b\\c.yaml", description: nil, nodes: [], params: [:],
                                                  warnings: []), plan: nil)
                .hasPrefix("digraph \"a\\\"b\\\\c.yaml\" {"))
    }
}
