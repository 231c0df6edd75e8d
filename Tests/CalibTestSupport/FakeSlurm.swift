import Foundation

/// A scripted stand-in for the Slurm client tools (sbatch, squeue, scontrol, sacct, scancel), for tests of behaviour
/// that a real test cluster cannot show on demand: Slurm's default limits (MaxArraySize 1001, max_script_size 4 MB),
/// refusals, an unreachable controller, a slow sbatch, jobs the controller forgot, slurmdbd's sacct.
///
/// State lives in `directory`: `jobs` (squeue rows in calibctl's `-O` format, one per array task; tests edit it to
/// make Slurm "forget" or change jobs), `sacct` (optional `sacct -P` lines; absent = accounting disabled),
/// `maxarray`, `maxscript`, and logs of every call (`sbatch.log`, `squeue.log`, `config.log`, `sacct.log`;
/// `submitted.log`: the array ids sbatch accepted; `sbatch-times.log`: start and end of every accepted sbatch call). sbatch calls may run concurrently (a lock orders the ids).
/// Behaviour knobs (environment of the tools): `FAKE_SBATCH_MODE` = refuse | unreachable, `FAKE_SBATCH_SLEEP` = s.
public final class FakeSlurm: @unchecked Sendable {
    public let tmp = TemporaryDirectory("fake-slurm")
    public var directory: String { tmp.path }
    public var bin: String { tmp.path + "/bin" }

    public init(maxArraySize: Int = 1001, maxScriptSize: Int = 4_194_304) throws {
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        try "\(maxArraySize)\n".write(toFile: directory + "/maxarray", atomically: true, encoding: .utf8)
        try "\(maxScriptSize)\n".write(toFile: directory + "/maxscript", atomically: true, encoding: .utf8)
        let d = directory
        try tool("sbatch", """
            echo "$*" >> '\(d)/sbatch.log'
            started=$(date +%s.%N)
            [ -n "$FAKE_SBATCH_SLEEP" ] && sleep "$FAKE_SBATCH_SLEEP"
            case "$FAKE_SBATCH_MODE" in
              refuse) echo "sbatch: error: invalid partition specified: nosuch" >&2
                      echo "sbatch: error: Batch job submission failed: Invalid partition name specified" >&2; exit 1 ;;
              unreachable) echo "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)" >&2; exit 1 ;;
            esac
            name=""; array=""; script=""
            for a in "$@"; do
              case "$a" in --array=*) array=${a#--array=} ;; --job-name=*) name=${a#--job-name=} ;; -*) ;; *) [ -z "$script" ] && script=$a ;; esac
            done
            last=${array##*-}
            if [ "$last" -ge "$(cat '\(d)/maxarray')" ]; then
              echo "sbatch: error: Batch job submission failed: Invalid job array specification" >&2; exit 1
            fi
            if [ "$(wc -c < "$script")" -gt "$(cat '\(d)/maxscript')" ]; then
              echo "sbatch: error: Batch job submission failed: Pathname of a file, directory or other parameter too long" >&2; exit 1
            fi
            exec 9>>'\(d)/sbatch.lock'; flock 9   # concurrent sbatch calls get distinct ids
            id=$(cat '\(d)/nextid' 2>/dev/null || echo 100); echo $((id + 1000000)) > '\(d)/nextid'
            awk -v id="$id" -v last="$last" -v name="$name" 'BEGIN { for (i = 0; i <= last; i++) printf "%s_%d|%s|%s|%d|PENDING|0|N/A|N/A|%s|c|None|\\n", id, i, id, id, i, name }' >> '\(d)/jobs'
            echo "$id" >> '\(d)/submitted.log'
            flock -u 9
            echo "$started $(date +%s.%N)" >> '\(d)/sbatch-times.log'
            echo "$id"
            """)
        // Without -r, Slurm prints the tasks of an array still pending in one record (job id = array id) as ONE line
        // `A_[0-3,7]` whose reason joins the distinct reasons (`JobHeldUser,Resources`); -r prints every task.
        try tool("squeue", """
            echo "$*" >> '\(d)/squeue.log'
            names=""; ids=""; expand=0
            while [ $# -gt 0 ]; do case "$1" in -n) names=$2; shift ;; -j) ids=$2; shift ;; -r) expand=1 ;; esac; shift; done
            [ -f '\(d)/jobs' ] || exit 0
            if [ -n "$names" ]; then col=9; l=$names; else col=3; l=$ids; fi
            awk -F'|' -v l="$l" -v col="$col" -v expand="$expand" '
              BEGIN { n = split(l, a, ","); for (i = 1; i <= n; i++) w[a[i]] = 1 }
              !($col in w) { next }
              expand || $5 != "PENDING" || $2 != $3 { print; next }
              { k = $3; t = $4 + 0
                if (!(k in first)) { first[k] = $0; order[++m] = k; list[k] = t; start[k] = t }
                else if (t == prev[k] + 1) { }
                else { list[k] = list[k] close_run(k) "," t; start[k] = t }
                prev[k] = t
                if (!((k, $11) in seen)) { seen[k, $11] = 1; reason[k] = (k in reason ? reason[k] "," : "") $11 } }
              function close_run(k) { return prev[k] > start[k] ? "-" prev[k] : "" }
              END { for (i = 1; i <= m; i++) { k = order[i]; split(first[k], f, "|"); s = list[k] close_run(k)
                      printf "%s_[%s]|%s|%s|%s|PENDING|0|N/A|N/A|%s|%s|%s|\\n", k, s, k, k, s, f[9], f[10], reason[k] } }
            ' '\(d)/jobs'
            """)
        try tool("scontrol", """
            case "$1 $2" in
              "show config") echo x >> '\(d)/config.log'
                             echo "MaxArraySize            = $(cat '\(d)/maxarray')"; echo "JobCompType             = jobcomp/none" ;;
              "show job") echo "slurm_load_jobs error: Invalid job id specified" >&2; exit 1 ;;
            esac
            """)
        try tool("sacct", """
            echo "$*" >> '\(d)/sacct.log'
            [ -f '\(d)/sacct' ] || { echo "sacct: error: Slurm accounting storage is disabled" >&2; exit 1; }
            cat '\(d)/sacct'
            """)
        try tool("scancel", "exit 0")
    }

    func tool(_ name: String, _ body: String) throws {
        let p = bin + "/" + name
        try ("#!/bin/sh\n" + body + "\n").write(toFile: p, atomically: true, encoding: .utf8)
        chmod(p, 0o755)
    }

    /// Lines of one of the logs (`sbatch`, `squeue`, `config`, `sacct`).
    /// Start and end (seconds since the epoch) of every sbatch call that accepted a job.
    public func sbatchIntervals() -> [(start: Double, end: Double)] {
        ((try? String(contentsOfFile: directory + "/sbatch-times.log", encoding: .utf8)) ?? "")
            .split(separator: "\n").compactMap { line in
                let p = line.split(separator: " ").compactMap { Double($0) }
                return p.count == 2 ? (p[0], p[1]) : nil
            }
    }

    /// The most sbatch calls that were running at one moment.
    public func sbatchMaxConcurrency() -> Int {
        let iv = sbatchIntervals()
        return iv.map { a in iv.filter { $0.start <= a.start && a.start < $0.end }.count }.max() ?? 0
    }

    public func calls(_ log: String) -> [String] {
        ((try? String(contentsOfFile: "\(directory)/\(log).log", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// The squeue rows Slurm currently knows.
    public var jobs: [String] {
        ((try? String(contentsOfFile: directory + "/jobs", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// Replaces what Slurm knows (e.g. `[]`: the controller forgot every job).
    public func setJobs(_ rows: [String]) throws {
        try (rows.map { $0 + "\n" }.joined()).write(toFile: directory + "/jobs", atomically: true, encoding: .utf8)
    }

    /// Makes `sacct` work and answer these `JobID|JobName|State|ExitCode|Start|End` lines.
    public func setSacct(_ lines: [String]) throws {
        try (lines.map { $0 + "\n" }.joined()).write(toFile: directory + "/sacct", atomically: true, encoding: .utf8)
    }
}
