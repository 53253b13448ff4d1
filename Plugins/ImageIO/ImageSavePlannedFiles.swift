import SanaGraphKit

extension ImageSave: PlansOutputFiles {
    /// The rendered path template for a one-image batch; nil with `{counter}`, which depends on the folder.
    /// `{date}` and `{time}` render from the run's start (`RunInfo.startedAt`), so they are known in advance.
    public func plannedOutputFiles(params: ParamValues, run: RunInfo) throws -> [String]? {
        let template = PathTemplate(params.string("path"))
        if template.contains("counter") { return nil }
        return [try template.render(run: run, batchIndex: 0, batchCount: 1)]
    }
}
