import SanaGraphKit
import Foundation

/// A JSON Schema for graph files, generated from a node registry, for editors' YAML language servers
/// (`# yaml-language-server: $schema=sanagraph.schema.json` at the top of a graph file).
public enum GraphSchema {
    /// JSON Schema (draft-07, the dialect yaml-language-server supports best) text for graph files of
    /// format 1: the top-level keys, graph param declarations, and for every registered node type its
    /// params (types, defaults, ranges, choices, docs) and input sockets. Keys are sorted, so the text is stable.
    public static func jsonSchema(registry: NodeRegistry) -> String {
        let identifier = "^[A-Za-z_][A-Za-z0-9_]*$"
        let reference: [String: Any] = [
            "type": "string",
            "pattern": "^[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)?$",
            "description": "An upstream node: 'node' (its only output) or 'node.output'.",
        ]
        let substitution: [String: Any] = [
            "type": "string",
            "pattern": "\\$\\{",
            "description": "A graph param reference such as \"${seed}\" (a whole-value reference keeps its type).",
        ]
        let graphParam: [String: Any] = [
            "description": "A graph param: {type, default, doc, min, max, choices}, or just a default value.",
            "oneOf": [
                ["type": ["string", "number", "integer", "boolean"]],
                [
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["type"],
                    "properties": [
                        "type": ["enum": GraphParamType.allCases.map(\.rawValue)],
                        "default": ["description": "Value when not given with --set or --params; no default makes the param required."],
                        "doc": ["type": "string"],
                        "min": ["type": "number"],
                        "max": ["type": "number"],
                        "choices": ["type": "array", "minItems": 1],
                    ] as [String: Any],
                ] as [String: Any],
            ],
        ]
        var definitions: [String: Any] = [
            "reference": reference, "substitution": substitution, "graphParam": graphParam,
        ]
        var branches: [[String: Any]] = []
        for descriptor in registry.descriptors {
            let name = "node:" + descriptor.typeName
            definitions[name] = nodeSchema(descriptor)
            branches.append([
                "if": ["properties": ["type": ["const": descriptor.typeName]], "required": ["type"]] as [String: Any],
                "then": ["$ref": "#/definitions/\(name)"],
            ])
        }
        definitions["node"] = [
            "type": "object",
            "required": ["type"],
            "properties": [
                "type": ["enum": registry.typeNames, "description": "The node type (see 'sanagraph nodes')."],
                "params": ["type": "object"],
                "inputs": ["type": "object"],
                "doc": ["type": "string"],
            ] as [String: Any],
            "additionalProperties": false,
            "allOf": branches,
        ] as [String: Any]
        let root: [String: Any] = [
            "$schema": "http://json-schema.org/draft-07/schema#",
            "$id": "https://sanagraph.invalid/schema/graph-format-1.json",
            "title": "SanaGraph graph file (format 1)",
            "type": "object",
            "required": ["sanagraph", "nodes"],
            "additionalProperties": false,
            "properties": [
                "sanagraph": ["const": 1, "description": "Graph format version."],
                "description": ["type": "string"],
                "params": [
                    "type": "object",
                    "propertyNames": ["pattern": identifier],
                    "additionalProperties": ["$ref": "#/definitions/graphParam"],
                ] as [String: Any],
                "nodes": [
                    "type": "object",
                    "propertyNames": ["pattern": identifier],
                    "additionalProperties": ["$ref": "#/definitions/node"],
                ] as [String: Any],
            ] as [String: Any],
            "definitions": definitions,
        ]
        // Plain dictionaries of strings, numbers, bools and arrays always serialise.
        let data = (try? JSONSerialization.data(withJSONObject: root,
                                                 options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    private static func nodeSchema(_ d: NodeDescriptor) -> [String: Any] {
        var params: [String: Any] = [:]
        for p in d.params {
            var value: [String: Any] = [:]
            switch p.type {
            case .int: value["type"] = "integer"
            case .float: value["type"] = "number"
            case .bool: value["type"] = "boolean"
            case .string, .path: value["type"] = ["string", "number", "integer", "boolean"]
            case .choice(let c): value["enum"] = c
            }
            if let min = p.min { value["minimum"] = jsonNumber(min) }
            if let max = p.max { value["maximum"] = jsonNumber(max) }
            var doc = p.doc.isEmpty ? "\(p.type)" : "\(p.doc) (\(p.type))"
            if let def = p.defaultValue {
                value["default"] = jsonValue(def)
                doc += "; default \(def)"
            } else {
                doc += "; required"
            }
            params[p.name] = ["anyOf": [value, ["$ref": "#/definitions/substitution"]], "description": doc]
                as [String: Any]
        }
        var inputs: [String: Any] = [:]
        for input in d.inputs {
            let accepts = input.accepts.map(\.name).joined(separator: " or ")
            let doc = (input.doc.isEmpty ? "" : input.doc + " ") + "(accepts \(accepts)"
                + (input.optional ? ", optional)" : ")")
            inputs[input.name] = ["$ref": "#/definitions/reference", "description": doc]
        }
        let outputs = d.outputs.map { "\($0.name): \($0.type)" }.joined(separator: ", ")
        return [
            "description": d.summary + (outputs.isEmpty ? "" : " Outputs: \(outputs).")
                + (d.hasSideEffects ? " Output node." : ""),
            "properties": [
                "type": ["const": d.typeName],
                "doc": ["type": "string"],
                "params": [
                    "type": "object", "additionalProperties": false, "properties": params,
                    "required": d.params.filter { $0.defaultValue == nil }.map(\.name),
                ] as [String: Any],
                "inputs": [
                    "type": "object", "additionalProperties": false, "properties": inputs,
                    "required": d.inputs.filter { !$0.optional }.map(\.name),
                ] as [String: Any],
            ] as [String: Any],
            "required": d.inputs.contains { !$0.optional } ? ["type", "inputs"] : ["type"],
        ]
    }

    private static func jsonNumber(_ v: Double) -> Any { v == v.rounded() && abs(v) < 1e15 ? Int(v) as Any : v as Any }

    private static func jsonValue(_ v: ParamValue) -> Any {
        switch v {
        case .int(let x): return x
        case .float(let x): return x
        case .bool(let x): return x
        case .string(let x): return x
        }
    }
}
