import SanaGraphKit

extension TensorSave: PlansOutputFiles {
    /// The `path` param as given (tensor.save has no template).
    public func plannedOutputFiles(params: ParamValues, run: RunInfo) throws -> [String]? {
        [params.string("path")]
    }
}
