import CPNG
import SanaGraphKit
import Tensors

/// PNG pixels <-> image tensors, through libpng's simplified API (which handles libpng's errors internally,
/// so no setjmp is needed on our side).
///
/// Colour-space chunks (gAMA, cHRM, sRGB, iCCP) are removed before decoding so that libpng hands back the stored
/// samples unchanged, as PIL does: an 8-bit file is read as 8-bit sRGB and a 16-bit file as 16-bit values, with no
/// gamma conversion either way.
enum PNGCodec {
    /// Chunks that would make libpng convert samples; dropped on read, replaced by a single sRGB chunk on write.
    static let colorSpaceChunks: Set<String> = ["gAMA", "cHRM", "sRGB", "iCCP"]
    static let textChunks: Set<String> = ["iTXt", "tEXt", "zTXt"]

    /// Decodes PNG bytes into an image tensor [1, 3, H, W] in [0, 1].
    ///
    /// Gray is replicated to RGB, palettes are expanded, alpha is dropped without compositing (like PIL's
    /// `convert("RGB")`). 16-bit samples map to v/65535, all others to v/255 (sub-byte depths are first scaled to
    /// 8 bits as the PNG spec says).
    static func decode(_ bytes: [UInt8], path: String, maxPixels: Int) throws -> (image: Tensor, header: PNGHeader) {
        let chunks = try PNGChunks.parse(bytes, path: path)
        let header = try PNGChunks.header(chunks, path: path)
        // Decompression-bomb guard: refuse before libpng allocates anything.
        let pixels = header.width.multipliedReportingOverflow(by: header.height)
        guard header.width > 0, header.height > 0, !pixels.overflow, pixels.partialValue <= maxPixels,
              header.width <= Int(Int32.max) / 8 else {
            throw ImageIOError.badDimensions(path: path, width: header.width, height: header.height, limit: maxPixels)
        }
        let needed = PNGLimits.decodeBytes(width: header.width, height: header.height,
                                           bytesPerSample: header.bitDepth == 16 ? 2 : 1)
        let available = MachineMemory.available
        guard needed <= available else {
            throw ImageIOError.tooLarge(path: path, width: header.width, height: header.height, needed: needed,
                                        available: available)
        }
        let clean = PNGChunks.serialize(chunks.filter {
            !colorSpaceChunks.contains($0.type) && !textChunks.contains($0.type)
        })

        // libpng reads from `clean` until finish_read returns, so all of decoding happens inside this closure.
        let out = try clean.withUnsafeBytes { memory in
            try decodeWithLibpng(memory, header: header, path: path)
        }
        return (out, header)
    }

    private static func decodeWithLibpng(_ memory: UnsafeRawBufferPointer, header: PNGHeader,
                                         path: String) throws -> Tensor {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        let begun = png_image_begin_read_from_memory(&image, memory.baseAddress, memory.count)
        guard begun != 0 else {
            let message = libpngMessage(&image)
            png_image_free(&image)
            throw ImageIOError.corrupt(path: path, reason: message)
        }
        let hasAlpha = image.format & UInt32(PNG_FORMAT_FLAG_ALPHA) != 0
        let sixteen = header.bitDepth == 16
        image.format = UInt32(PNG_FORMAT_FLAG_COLOR) | (hasAlpha ? UInt32(PNG_FORMAT_FLAG_ALPHA) : 0)
            | (sixteen ? UInt32(PNG_FORMAT_FLAG_LINEAR) : 0)
        let channels = hasAlpha ? 4 : 3
        let width = header.width, height = header.height, plane = width * height
        var out = Tensor(uninitialized: [1, 3, height, width])

        if sixteen {
            let buffer = try finishRead(&image, as: UInt16.self, count: plane * channels, path: path)
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<plane {
                    let alpha = hasAlpha ? UInt32(buffer[i * 4 + 3]) : 65535
                    for c in 0..<3 {
                        var v = UInt32(buffer[i * channels + c])
                        // The simplified API premultiplies alpha in 16-bit ("linear") output; undo it.
                        if alpha != 65535 { v = alpha == 0 ? 0 : min(65535, (v * 65535 + alpha / 2) / alpha) }
                        dst[c * plane + i] = Float(v) / 65535
                    }
                }
            }
        } else {
            let buffer = try finishRead(&image, as: UInt8.self, count: plane * channels, path: path)
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<plane {
                    for c in 0..<3 { dst[c * plane + i] = Float(buffer[i * channels + c]) / 255 }
                }
            }
        }
        png_image_free(&image)
        return out
    }

    /// Quantises one image (`pixels` = [3, H, W] planes in [0, 1]) as diffusers' `numpy_to_pil` does —
    /// `round(clamp(x, 0, 1) * 255)` in fp32, ties to even like numpy — and encodes it as an RGB PNG of `bits`
    /// (8 or 16) per sample, with `textChunks` (keyword, text) stored as iTXt before the image data.
    static func encode(_ pixels: UnsafeBufferPointer<Float>, width: Int, height: Int, bits: Int,
                       text: [(keyword: String, text: String)], path: String) throws -> [UInt8] {
        let plane = width * height
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(width)
        image.height = UInt32(height)
        var encoded: [UInt8]
        if bits == 16 {
            image.format = UInt32(PNG_FORMAT_LINEAR_RGB)
            var buffer = [UInt16](repeating: 0, count: plane * 3)
            for i in 0..<plane {
                for c in 0..<3 { buffer[i * 3 + c] = UInt16(quantize(pixels[c * plane + i], 65535)) }
            }
            encoded = try buffer.withUnsafeBytes { try writeToMemory(&image, $0.baseAddress!, rawBytes: $0.count, path: path) }
        } else {
            image.format = UInt32(PNG_FORMAT_RGB)
            var buffer = [UInt8](repeating: 0, count: plane * 3)
            for i in 0..<plane {
                for c in 0..<3 { buffer[i * 3 + c] = UInt8(quantize(pixels[c * plane + i], 255)) }
            }
            encoded = try buffer.withUnsafeBytes { try writeToMemory(&image, $0.baseAddress!, rawBytes: $0.count, path: path) }
        }
        // libpng labels 16-bit output as linear (gAMA 1.0); our samples are sRGB-encoded at both depths, so
        // replace its colour-space chunks with one sRGB chunk, and add the text before IDAT.
        let chunks = try PNGChunks.parse(encoded, path: path)
        var result: [PNGChunk] = []
        for chunk in chunks where !colorSpaceChunks.contains(chunk.type) {
            if chunk.type == "IDAT" && !result.contains(where: { $0.type == "IDAT" }) {
                for t in text { result.append(iTXt(keyword: t.keyword, text: t.text)) }
            }
            result.append(chunk)
            if chunk.type == "IHDR" { result.append(PNGChunk(type: "sRGB", data: [0])) }
        }
        return PNGChunks.serialize(result)
    }

    /// `round(clamp(x, 0, 1) * scale)` with fp32 arithmetic and ties to even (NaN becomes 0).
    @inline(__always)
    static func quantize(_ x: Float, _ scale: Float) -> Int {
        guard x == x else { return 0 }
        return Int((min(max(x, 0), 1) * scale).rounded(.toNearestOrEven))
    }

    /// An uncompressed iTXt chunk (keyword, no language tag, UTF-8 text).
    static func iTXt(keyword: String, text: String) -> PNGChunk {
        var data = Array(keyword.utf8.prefix(79))
        data += [0, 0, 0, 0, 0]  // keyword terminator, compression flag, method, empty language tag, empty translation
        data += Array(text.utf8)
        return PNGChunk(type: "iTXt", data: data)
    }

    /// The text of the iTXt (or tEXt) chunk with `keyword`, if present and uncompressed.
    static func text(keyword: String, in chunks: [PNGChunk]) -> TextLookup? {
        for chunk in chunks where chunk.type == "iTXt" || chunk.type == "tEXt" {
            let d = chunk.data
            guard let zero = d.firstIndex(of: 0), String(decoding: d[..<zero], as: UTF8.self) == keyword else { continue }
            if chunk.type == "tEXt" { return .found(String(decoding: d[(zero + 1)...], as: UTF8.self)) }
            guard d.count >= zero + 3 else { return .unreadable("truncated iTXt chunk") }
            if d[zero + 1] != 0 { return .unreadable("compressed iTXt text is not supported") }
            var i = zero + 3
            for _ in 0..<2 {  // language tag, translated keyword
                guard let end = d[i...].firstIndex(of: 0) else { return .unreadable("truncated iTXt chunk") }
                i = end + 1
            }
            return .found(String(decoding: d[i...], as: UTF8.self))
        }
        return nil
    }

    enum TextLookup {
        case found(String)
        case unreadable(String)
    }

    private static func writeToMemory(_ image: inout png_image, _ buffer: UnsafeRawPointer, rawBytes: Int,
                                      path: String) throws -> [UInt8] {
        // Stored (incompressible) data needs about raw size + 0.1% + per-row filter bytes; retry if libpng asks more.
        var capacity = rawBytes + Int(image.height) + rawBytes / 500 + 4096
        for _ in 0..<2 {
            var out = [UInt8](repeating: 0, count: capacity)
            var size = capacity
            let ok = out.withUnsafeMutableBytes {
                png_image_write_to_memory(&image, $0.baseAddress, &size, 0, buffer, 0, nil)
            }
            if ok != 0 { return Array(out[0..<size]) }
            if size > capacity { capacity = size; continue }
            let message = libpngMessage(&image)
            png_image_free(&image)
            throw ImageIOError.unwritable(path: path, reason: "PNG encoding failed: \(message)")
        }
        throw ImageIOError.unwritable(path: path, reason: "PNG encoding failed: output buffer too small")
    }

    /// Decodes the pixels of a begun read into a new buffer; on failure frees `image` and throws `.corrupt`.
    static func finishRead<T: FixedWidthInteger>(_ image: inout png_image, as: T.Type, count: Int,
                                                 path: String) throws -> [T] {
        var buffer = [T](repeating: 0, count: count)
        let ok = buffer.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, 0, nil) }
        guard ok != 0 else {
            let message = libpngMessage(&image)
            png_image_free(&image)
            throw ImageIOError.corrupt(path: path, reason: message)
        }
        return buffer
    }

    static func libpngMessage(_ image: inout png_image) -> String {
        let text = withUnsafeBytes(of: &image.message) { raw -> String in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
        return text.isEmpty ? "libpng could not decode the file" : "libpng: \(text)"
    }
}
