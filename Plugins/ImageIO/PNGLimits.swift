import SanaGraphKit

/// Limits on PNG input, checked before anything is allocated for it (docs/limits.md).
public enum PNGLimits {
    /// A PNG file larger than this is refused unread.
    public static let maxFileBytes = 1 << 30
    /// One chunk other than IDAT (text and metadata chunks included); the metadata chunk holds a graph of at most
    /// 16 MiB plus its params.
    public static let maxAncillaryChunkBytes = 64 << 20
    /// Chunks in one file (a real PNG has a handful; libpng writes 8 KiB IDATs, so 1 GiB is 131 072 of them).
    public static let maxChunks = 1 << 20
    /// The highest `max_pixels` an `image.load` may set (2^30 pixels: a 32768 × 32768 image, 12 GiB as fp32).
    public static let maxPixelsCeiling = 1 << 30

    /// Bytes decoding a `width` × `height` image takes at its peak: libpng's buffer (4 samples of `bytesPerSample`)
    /// and the fp32 [1, 3, H, W] tensor.
    static func decodeBytes(width: Int, height: Int, bytesPerSample: Int) -> Int {
        let pixels = width.multipliedReportingOverflow(by: height)
        guard !pixels.overflow else { return .max }
        let perPixel = 4 * bytesPerSample + 12
        let total = pixels.partialValue.multipliedReportingOverflow(by: perPixel)
        return total.overflow ? .max : total.partialValue
    }
}
