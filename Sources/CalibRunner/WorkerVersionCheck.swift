import CalibCore

/// The check between the calibctl that wrote a job spec (its version is in `JobSpec.calibctlVersion`) and the calibctl
/// that runs it on a worker node (`calibctl job run`), docs/runner.md "Worker nodes".
///
/// A worker OLDER than the writer may not know a kind, parameter or spec field the writer used, so it refuses: the
/// job ends with exit 78 (configuration error) and a message naming both versions and the fix. A NEWER worker runs
/// the job and says so in the result record's message (specs are kept for retries, so a site that upgraded every
/// node still retries shards whose specs an older calibctl wrote). A spec without a version (written before the
/// field existed) is not checked.
public enum WorkerVersionCheck: Sendable, Equatable {
    case same
    case unrecorded
    /// Run, with this note in the result record.
    case warn(String)
    /// Do not run; the job fails with exit 78 and this message.
    case refuse(String)

    /// The exit status of a refused job (sysexits EX_CONFIG, docs/exit-codes.md).
    public static let refusalExitCode: Int32 = 78

    /// Compares `submitter` (the spec's `calibctlVersion`) with `worker` (default: this calibctl). Both may carry
    /// the build as SemVer build metadata (`0.1.0+8842c0b4ae97f654`, `CalibctlVersion.full`); release numbers are
    /// compared, builds are not: the same release from another build runs as the same (a spec format change bumps
    /// the spec's own format version, which `JobSpec.read` checks), and the result record names the worker's build
    /// next to the spec's (`JobResult.calibctlVersion`) for the audit.
    public static func check(submitter: String?, worker: String = CalibctlVersion.full) -> WorkerVersionCheck {
        guard let submitter, !submitter.isEmpty else { return .unrecorded }
        if submitter == worker { return .same }
        func release(_ v: String) -> String { String(v.split(separator: "+", maxSplits: 1).first ?? Substring(v)) }
        let sv = release(submitter), wv = release(worker)
        if sv == wv { return .same }
        let fix = "deploy the same calibctl build to the worker nodes (the binary of `swift build -c release`; "
            + "docs/runner.md, \"Worker nodes\") or point workerCommand / CALIBCTL_WORKER at it"
        switch order(wv, sv) {
        case .some(true):
            return .warn("calibctl \(wv) on this worker is newer than calibctl \(sv) that submitted the "
                         + "job; it ran anyway (to avoid the difference, \(fix))")
        case .some(false):
            return .refuse("calibctl \(wv) on this worker is older than calibctl \(sv) that submitted the "
                           + "job, so it may not run the job as intended and refused it: \(fix), then "
                           + "`calibctl jobs retry`")
        case nil:
            return .refuse("calibctl \(wv) on this worker is another build than calibctl \(sv) that "
                           + "submitted the job, so it refused it: \(fix), then `calibctl jobs retry`")
        }
    }

    /// Whether `a` is newer than `b` by their dot-separated numeric parts (`0.10.0` > `0.9.2`); nil when they differ
    /// but not in those parts (e.g. `0.1.0-dev` and `0.1.0`), so neither can be called newer.
    static func order(_ a: String, _ b: String) -> Bool? {
        func numbers(_ v: String) -> [Int] {
            let core = v.split(separator: "-", maxSplits: 1).first ?? ""
            return core.split(separator: ".").map { Int($0) ?? 0 }
        }
        let x = numbers(a), y = numbers(b)
        for i in 0..<max(x.count, y.count) {
            let p = i < x.count ? x[i] : 0, q = i < y.count ? y[i] : 0
            if p != q { return p > q }
        }
        return nil
    }
}
