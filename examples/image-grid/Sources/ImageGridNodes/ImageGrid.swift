import SanaGraphKit
import Tensors

/// How `grid.compose` lays images out: a value of the pack's own socket type, `grid.Layout`.
public struct GridLayout: Sendable, Equatable, CacheableValue {
    /// Images per row; 0 = as square as possible.
    public var columns: Int
    /// Pixels between images and around the grid.
    public var padding: Int
    /// Background colour, RGB in [0, 1].
    public var background: [Float]

    public static let standard = GridLayout(columns: 0, padding: 8, background: [1, 1, 1])

    public init(columns: Int, padding: Int, background: [Float]) {
        self.columns = columns
        self.padding = padding
        self.background = background
    }

    // A layout is stored in the disk cache as three string fields, and read back exactly.
    public func cacheParts() -> ValueParts {
        ValueParts(fields: ["columns": String(columns), "padding": String(padding),
                            "background": background.map { String($0.bitPattern, radix: 16) }.joined(separator: ",")])
    }

    public init(cacheParts parts: ValueParts) throws {
        let bits = try parts.field("background").split(separator: ",").compactMap { UInt32($0, radix: 16) }
        guard let columns = Int(try parts.field("columns")), let padding = Int(try parts.field("padding")),
              bits.count == 3 else { throw ValueParts.Invalid("malformed grid layout") }
        self.init(columns: columns, padding: padding, background: bits.map(Float.init(bitPattern:)))
    }

    /// Parses `#rrggbb`, `white`, `black` or `gray`.
    public static func color(_ text: String) -> [Float]? {
        switch text.lowercased() {
        case "white": return [1, 1, 1]
        case "black": return [0, 0, 0]
        case "gray", "grey": return [0.5, 0.5, 0.5]
        default:
            let hex = text.hasPrefix("#") ? text.dropFirst() : Substring(text)
            guard hex.count == 6, let v = UInt32(hex, radix: 16) else { return nil }
            return [Float((v >> 16) & 0xFF) / 255, Float((v >> 8) & 0xFF) / 255, Float(v & 0xFF) / 255]
        }
    }
}

extension SocketType {
    /// Namespaced with the pack's prefix, so it can never clash with another pack's "Layout".
    public static let gridLayout = SocketType("grid.Layout", storing: GridLayout.self,
                                              doc: "how grid.compose arranges images (columns, padding, background)")
}

/// `grid.layout`: builds a `grid.Layout` from params.
public struct GridLayoutNode: Node {
    public static let descriptor = NodeDescriptor(
        typeName: "grid.layout", version: 1, summary: "Describe a grid layout (columns, padding, background colour)",
        outputs: [OutputSpec("layout", .gridLayout)],
        params: [
            ParamSpec("columns", .int, default: .int(0), min: 0, max: 64, doc: "images per row; 0 = as square as possible"),
            ParamSpec("padding", .int, default: .int(8), min: 0, max: 512, doc: "pixels between and around images"),
            ParamSpec("background", .string, default: .string("white"), doc: "#rrggbb, white, black or gray"),
        ])

    public init() {}

    public func validate(params: ParamValues) -> [String] {
        GridLayout.color(params.string("background")) == nil
            ? ["background '\(params.string("background"))' is not a colour; use #rrggbb, white, black or gray"] : []
    }

    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        let layout = GridLayout(columns: params.int("columns"), padding: params.int("padding"),
                                background: GridLayout.color(params.string("background")) ?? [1, 1, 1])
        return ["layout": Value(.gridLayout, layout)]
    }
}

/// `grid.compose`: every image of inputs `a`…`d` (each a batch [B, 3, H, W] of the same H and W), in order, laid
/// out row by row in one image [1, 3, H', W'].
public struct GridComposeNode: Node {
    static let imageInputs = ["a", "b", "c", "d"]

    public static let descriptor = NodeDescriptor(
        typeName: "grid.compose", version: 1, summary: "Lay images out in a grid (e.g. to compare seeds or prompts)",
        inputs: imageInputs.enumerated().map { i, name in
            InputSpec(name, .image, optional: i > 0, doc: i == 0 ? "images (a batch)" : "more images, after the previous")
        } + [InputSpec("layout", .gridLayout, optional: true, doc: "from grid.layout; default: square, 8 px, white")],
        outputs: [OutputSpec("image", .image, doc: "the grid")])

    public init() {}

    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        let layout = try inputs.optionalPayload("layout", as: GridLayout.self, expected: "grid.Layout") ?? .standard
        var images: [(tensor: Tensor, index: Int)] = []
        var size: (h: Int, w: Int)?
        for name in Self.imageInputs {
            guard let batch = try inputs.optionalTensor(name) else { continue }
            guard batch.rank == 4, batch.shape[1] == 3 else {
                throw NodeError.invalidInput(node: context.nodeID, message: "input '\(name)' is \(batch.shape), expected images [B, 3, H, W]")
            }
            let (h, w) = (batch.shape[2], batch.shape[3])
            if let size, size != (h, w) {
                throw NodeError.invalidInput(node: context.nodeID, message: "input '\(name)' holds \(w)×\(h) images, "
                                             + "but earlier ones are \(size.w)×\(size.h); resize them first (image.resize)")
            }
            size = (h, w)
            for b in 0..<batch.shape[0] { images.append((batch, b)) }
        }
        guard let (h, w) = size, !images.isEmpty else {
            throw NodeError.invalidInput(node: context.nodeID, message: "no images to lay out")
        }
        let n = images.count
        var columns = layout.columns > 0 ? min(layout.columns, n) : 1
        if layout.columns == 0 { while columns * columns < n { columns += 1 } }
        let rows = (n + columns - 1) / columns
        let pad = layout.padding
        let (outH, outW) = (rows * h + (rows + 1) * pad, columns * w + (columns + 1) * pad)
        guard outH * outW <= 1 << 28 else {
            throw NodeError.invalidInput(node: context.nodeID, message: "the grid would be \(outW)×\(outH) pixels; "
                                         + "use fewer images, smaller ones or less padding")
        }
        var out = Tensor(uninitialized: [1, 3, outH, outW])
        out.withUnsafeMutableBufferPointer { dst in
            for c in 0..<3 {
                dst[(c * outH * outW)..<((c + 1) * outH * outW)].update(repeating: layout.background[c])
            }
            for (i, item) in images.enumerated() {
                let (top, left) = (pad + (i / columns) * (h + pad), pad + (i % columns) * (w + pad))
                item.tensor.withUnsafeBufferPointer { src in
                    for c in 0..<3 {
                        for y in 0..<h {
                            let from = ((item.index * 3 + c) * h + y) * w
                            let to = (c * outH + top + y) * outW + left
                            for x in 0..<w { dst[to + x] = src[from + x] }
                        }
                    }
                }
            }
        }
        return ["image": .image(out)]
    }
}

/// The pack: its nodes and the socket type it adds.
public enum ImageGridPack: NodePack {
    public static let name = "ImageGrid"
    public static let nodes: [any Node.Type] = [GridLayoutNode.self, GridComposeNode.self]
    public static let socketTypes: [SocketType] = [.gridLayout]
}
