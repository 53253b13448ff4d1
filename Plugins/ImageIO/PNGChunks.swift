// The PNG chunk stream (PNG spec §5), handled directly: libpng's simplified API neither writes text chunks nor
// lets us see the header before it allocates, and its low-level API needs setjmp, which Swift cannot use.

/// One chunk of a PNG stream.
struct PNGChunk: Sendable, Equatable {
    /// Four ASCII letters, e.g. "IHDR".
    var type: String
    var data: [UInt8]

    /// Critical chunks (upper-case first letter) must be understood; ancillary ones may be dropped.
    var isCritical: Bool { type.utf8.first.map { $0 & 0x20 == 0 } ?? true }
}

/// The fields of IHDR.
struct PNGHeader: Sendable, Equatable {
    var width: Int
    var height: Int
    var bitDepth: Int
    /// 0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA.
    var colorType: Int
    var interlaced: Bool
}

enum PNGChunks {
    static let signature: [UInt8] = [137, 80, 78, 71, 13, 10, 26, 10]

    /// Splits a PNG byte stream into chunks, checking the signature, lengths and CRCs up to IEND.
    /// A bad CRC in a critical chunk is an error; an ancillary chunk with a bad CRC is dropped (as libpng does).
    static func parse(_ bytes: [UInt8], path: String) throws -> [PNGChunk] {
        guard bytes.count >= 8, Array(bytes[0..<8]) == signature else {
            throw ImageIOError.corrupt(path: path, reason: "missing PNG signature (is this a PNG file?)")
        }
        var chunks: [PNGChunk] = []
        var pos = 8
        while true {
            guard chunks.count < PNGLimits.maxChunks else {
                throw ImageIOError.corrupt(path: path, reason: "more than \(PNGLimits.maxChunks) chunks (the limit)")
            }
            guard pos + 12 <= bytes.count else {
                throw ImageIOError.corrupt(path: path, reason: "file is truncated (no IEND chunk)")
            }
            let length = Int(readUInt32(bytes, pos))
            guard length <= 0x7fff_ffff, length <= bytes.count - pos - 12 else {
                throw ImageIOError.corrupt(path: path, reason: "file is truncated (chunk at byte \(pos) "
                    + "declares \(length) bytes, \(bytes.count - pos - 12) remain)")
            }
            let typeBytes = Array(bytes[(pos + 4)..<(pos + 8)])
            guard typeBytes.allSatisfy({ ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) }) else {
                throw ImageIOError.corrupt(path: path, reason: "invalid chunk type at byte \(pos + 4)")
            }
            let type = String(decoding: typeBytes, as: UTF8.self)
            if type != "IDAT" && length > PNGLimits.maxAncillaryChunkBytes {
                throw ImageIOError.corrupt(path: path, reason: "the \(type) chunk at byte \(pos) is \(length) bytes, "
                    + "above the limit of \(PNGLimits.maxAncillaryChunkBytes) for chunks other than IDAT")
            }
            let stored = readUInt32(bytes, pos + 8 + length)
            let computed = CRC32.checksum(bytes[(pos + 4)..<(pos + 8 + length)])
            let chunk = PNGChunk(type: type, data: Array(bytes[(pos + 8)..<(pos + 8 + length)]))
            pos += 12 + length
            if stored != computed {
                if chunk.isCritical {
                    throw ImageIOError.corrupt(path: path, reason: "CRC mismatch in \(type) chunk (the file is damaged)")
                }
                continue
            }
            if chunks.isEmpty && type != "IHDR" {
                throw ImageIOError.corrupt(path: path, reason: "first chunk is \(type), expected IHDR")
            }
            chunks.append(chunk)
            if type == "IEND" { break }
        }
        guard chunks.contains(where: { $0.type == "IDAT" }) else {
            throw ImageIOError.corrupt(path: path, reason: "no image data (IDAT chunk)")
        }
        return chunks
    }

    /// Decodes IHDR (the first chunk, guaranteed by `parse`).
    static func header(_ chunks: [PNGChunk], path: String) throws -> PNGHeader {
        guard let ihdr = chunks.first, ihdr.type == "IHDR", ihdr.data.count == 13 else {
            throw ImageIOError.corrupt(path: path, reason: "malformed IHDR chunk")
        }
        let d = ihdr.data
        let header = PNGHeader(width: Int(readUInt32(d, 0)), height: Int(readUInt32(d, 4)), bitDepth: Int(d[8]),
                               colorType: Int(d[9]), interlaced: d[12] != 0)
        let allowed: [Int: [Int]] = [0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16]]
        guard let depths = allowed[header.colorType], depths.contains(header.bitDepth) else {
            throw ImageIOError.corrupt(path: path, reason: "invalid colour type \(header.colorType) "
                + "with bit depth \(header.bitDepth)")
        }
        return header
    }

    /// Serialises chunks (with the signature) into a PNG byte stream.
    static func serialize(_ chunks: [PNGChunk]) -> [UInt8] {
        var out = signature
        out.reserveCapacity(chunks.reduce(8) { $0 + $1.data.count + 12 })
        for chunk in chunks {
            appendUInt32(&out, UInt32(chunk.data.count))
            let start = out.count
            out.append(contentsOf: Array(chunk.type.utf8))
            out.append(contentsOf: chunk.data)
            appendUInt32(&out, CRC32.checksum(out[start...]))
        }
        return out
    }

    static func readUInt32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
    }

    static func appendUInt32(_ out: inout [UInt8], _ v: UInt32) {
        out.append(contentsOf: [UInt8(v >> 24), UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff)])
    }
}

/// CRC-32 as PNG (and zlib) define it: polynomial 0xEDB88320, reflected, initial and final XOR 0xFFFFFFFF.
enum CRC32 {
    static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var c: UInt32 = 0xffff_ffff
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xff)] ^ (c >> 8) }
        return c ^ 0xffff_ffff
    }
}
