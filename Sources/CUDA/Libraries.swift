/// What the process loaded, for `info` output and bug reports.
public enum CUDALibraries {
    /// Paths and versions of the driver, NVRTC and cuBLASLt (or why each could not be loaded).
    public static func describe() -> [String: String] {
        var out: [String: String] = [:]
        do {
            let d = try CUDADriver.shared()
            out["driver"] = "\(d.library.path) (CUDA \(d.version / 1000).\(d.version % 1000 / 10))"
        } catch { out["driver"] = "\(error)" }
        do {
            let n = try NVRTC.shared()
            out["nvrtc"] = "\(n.library.path) (\(n.version.0).\(n.version.1))"
        } catch { out["nvrtc"] = "\(error)" }
        do {
            let c = try CuBLASLtLibrary.shared()
            out["cublaslt"] = "\(c.library.path) (\(c.version))"
        } catch { out["cublaslt"] = "\(error)" }
        return out
    }
}
