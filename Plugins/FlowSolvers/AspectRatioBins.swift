/// Resolution binning as diffusers' SanaPipeline does it (`use_resolution_binning`): the requested size is
/// replaced by the nearest aspect-ratio bin of a table chosen from the transformer's `sample_size`
/// (`PixArtImageProcessor.classify_height_width_bin`); the decoded image is resized back afterwards
/// (`dcae.decode`'s width/height).
public enum AspectRatioBins {
    /// One bin: the ratio key as diffusers writes it (height / width) and the size in pixels.
    public struct Bin: Sendable, Equatable {
        public var key: String
        public var height: Int
        public var width: Int
    }

    /// The table SanaPipeline uses for a transformer `sample_size` (128 → 4096 px bins, 64 → 2048, 32 → 1024,
    /// 16 → 512), or nil for any other size (diffusers raises "Invalid sample size" there).
    public static func table(sampleSize: Int) -> [Bin]? {
        switch sampleSize {
        case 128: return bins4096
        case 64: return bins2048
        case 32: return bins1024
        case 16: return bins512
        default: return nil
        }
    }

    /// The bin whose ratio key is nearest to height / width; the first in table order wins a tie, as Python's
    /// `min` does.
    public static func nearest(height: Int, width: Int, in table: [Bin]) -> Bin? {
        let ratio = Double(height) / Double(width)
        var best: Bin?
        var bestDistance = Double.infinity
        for bin in table {
            guard let key = Double(bin.key) else { continue }
            let d = abs(key - ratio)
            if d < bestDistance {
                best = bin
                bestDistance = d
            }
        }
        return best
    }
}
