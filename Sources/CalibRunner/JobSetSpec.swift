import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The specs of every shard of a job set in ONE file, `jobs/<set>/specs.jsonl` (spec format version 2): what the
/// shards share is written once, what differs (key, and any field whose value is not the same for every shard) once
/// per shard. A worker runs shard I with `calibctl job run jobs/<set>/specs.jsonl --shard I`.
///
/// JSON Lines, so a worker decodes only its own line and a person can `grep` a shard's line:
/// ```
/// {"formatVersion":2,"shards":N,"common":{"kind":"command","parameters":{"shell":"..."},...}}   line 1: the header
/// {"index":0,"key":"fed=1200"}                                                                   line 2 + I: shard I
/// {"index":1,"key":"fed=1201","outputs":{"fit":"fit-1201.h5"}}
/// ```
/// A field present on a shard's line replaces the common one (whole values, not merged key by key).
/// Version 1 (one `shard-I/spec.json` per shard) is still read: `calibctl job run SPEC` without `--shard`.
public struct JobSetSpec: Sendable, Equatable {
    /// The file name inside the job set directory.
    public static let fileName = "specs.jsonl"
    /// The format version of this file (per-shard spec files are version 1).
    public static let formatVersion = 2

    /// The fields of a spec, each optional: the header's common values, and a shard's own values.
    public struct Fields: Sendable, Codable, Equatable {
        public var kind: String?
        public var inputs: [String: String]?
        public var outputs: [String: String]?
        public var parameters: [String: String]?
        public var environment: [String: String]?
        public var workDirectory: String?
        /// The calibctl that wrote the spec (`JobSpec.calibctlVersion`).
        public var calibctlVersion: String?

        public init() {}
    }

    struct Header: Codable {
        var formatVersion: Int
        var shards: Int
        var common: Fields
    }

    struct ShardLine: Codable {
        var index: Int
        var key: String
        var kind: String?
        var inputs: [String: String]?
        var outputs: [String: String]?
        var parameters: [String: String]?
        var environment: [String: String]?
        var workDirectory: String?
        var calibctlVersion: String?
    }

    public var common: Fields
    /// Per shard (by index): its key and the fields that differ from `common`.
    public var shards: [(key: String, own: Fields)]

    public static func == (a: JobSetSpec, b: JobSetSpec) -> Bool {
        a.common == b.common && a.shards.count == b.shards.count
            && zip(a.shards, b.shards).allSatisfy { $0.key == $1.key && $0.own == $1.own }
    }

    /// Splits full per-shard specs into what they share and what differs.
    public init(specs: [JobSpec]) {
        func same<T: Equatable>(_ f: (JobSpec) -> T) -> Bool {
            guard let first = specs.first.map(f) else { return true }
            return specs.allSatisfy { f($0) == first }
        }
        let first = specs.first ?? JobSpec(kind: "command")
        var c = Fields()
        let kindShared = same(\.kind), inputsShared = same(\.inputs), outputsShared = same(\.outputs)
        let paramsShared = same(\.parameters), envShared = same(\.environment), wdShared = same(\.workDirectory)
        let versionShared = same(\.calibctlVersion)
        if kindShared { c.kind = first.kind }
        if inputsShared { c.inputs = first.inputs }
        if outputsShared { c.outputs = first.outputs }
        if paramsShared { c.parameters = first.parameters }
        if envShared { c.environment = first.environment }
        if wdShared { c.workDirectory = first.workDirectory }
        if versionShared { c.calibctlVersion = first.calibctlVersion }
        common = c
        shards = specs.map { s in
            var o = Fields()
            if !kindShared { o.kind = s.kind }
            if !inputsShared { o.inputs = s.inputs }
            if !outputsShared { o.outputs = s.outputs }
            if !paramsShared { o.parameters = s.parameters }
            if !envShared { o.environment = s.environment }
            if !wdShared { o.workDirectory = s.workDirectory }
            if !versionShared { o.calibctlVersion = s.calibctlVersion }
            return (s.key, o)
        }
    }

    /// The full spec of shard `index`.
    public func spec(_ index: Int) -> JobSpec? {
        guard index >= 0, index < shards.count else { return nil }
        return Self.merge(common, index: index, key: shards[index].key, own: shards[index].own)
    }

    static func merge(_ c: Fields, index: Int, key: String, own: Fields) -> JobSpec {
        var s = JobSpec(kind: own.kind ?? c.kind ?? "", key: key, index: index, inputs: own.inputs ?? c.inputs ?? [:],
                        outputs: own.outputs ?? c.outputs ?? [:], parameters: own.parameters ?? c.parameters ?? [:])
        s.environment = own.environment ?? c.environment
        s.workDirectory = own.workDirectory ?? c.workDirectory
        s.calibctlVersion = own.calibctlVersion ?? c.calibctlVersion
        return s
    }

    /// The file's bytes: the header line, then one line per shard.
    public func encoded() throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var out = try enc.encode(Header(formatVersion: Self.formatVersion, shards: shards.count, common: common))
        out.append(0x0A)
        for (i, s) in shards.enumerated() {
            let o = s.own
            out.append(try enc.encode(ShardLine(index: i, key: s.key, kind: o.kind, inputs: o.inputs, outputs: o.outputs,
                                                parameters: o.parameters, environment: o.environment,
                                                workDirectory: o.workDirectory, calibctlVersion: o.calibctlVersion)))
            out.append(0x0A)
        }
        return out
    }

    /// Writes the file with a temporary name and a rename (no fsync, as per-shard specs were: a spec lost in a
    /// machine crash makes the attempts fail and be retried).
    public func write(to path: String) throws {
        try JobFiles.writeReplacing(try encoded(), to: path)
    }

    /// True when `path` names a job set spec file (version 2) rather than one shard's spec (version 1).
    public static func isJobSetSpec(_ path: String) -> Bool {
        path == fileName || path.hasSuffix("/" + fileName)
    }

    /// The directory of shard `index` of the job set whose spec is `path`: `DIR/shard-<index>` beside the file.
    /// For a per-shard spec (version 1) it is the spec's own directory. (String operations, not NSString's path
    /// methods: this runs for every shard of every submission and update.)
    public static func shardDirectory(specPath path: String, index: Int) -> String {
        guard isJobSetSpec(path) else { return (path as NSString).deletingLastPathComponent }
        return String(path.dropLast(fileName.count)) + "shard-\(index)"
    }

    /// Reads shard `index` of a job set spec file, decoding only the header and that shard's line. The file's
    /// lines are cached per process (the local executor and the workflow read many shards of the same file).
    public static func readShard(_ path: String, index: Int) throws -> JobSpec {
        let file = try FileCache.shared.lines(path)
        let dec = JSONDecoder()
        let header: Header
        do { header = try dec.decode(Header.self, from: file.line(0)) } catch {
            throw JobError.badSpec(path: path, detail: "not a job set spec (its first line is no header): \(error)")
        }
        guard header.formatVersion <= formatVersion else {
            throw JobError.badSpec(path: path, detail: "format version \(header.formatVersion) is newer than this "
                                   + "calibctl understands (\(formatVersion)); install the same calibctl on the workers")
        }
        guard index >= 0, index < header.shards, index + 1 < file.count else {
            throw JobError.badSpec(path: path, detail: "has no shard \(index) (it has \(header.shards))")
        }
        let line: ShardLine
        do { line = try dec.decode(ShardLine.self, from: file.line(index + 1)) } catch {
            throw JobError.badSpec(path: path, detail: "line \(index + 2) (shard \(index)) is not a shard: \(error)")
        }
        guard line.index == index else {
            throw JobError.badSpec(path: path, detail: "line \(index + 2) is shard \(line.index), not \(index)")
        }
        var own = Fields()
        (own.kind, own.inputs, own.outputs, own.parameters) = (line.kind, line.inputs, line.outputs, line.parameters)
        (own.environment, own.workDirectory, own.calibctlVersion) = (line.environment, line.workDirectory, line.calibctlVersion)
        return merge(header.common, index: index, key: line.key, own: own)
    }

    /// Reads a whole job set spec file.
    public static func read(_ path: String) throws -> JobSetSpec {
        let file = try FileCache.shared.lines(path)
        guard file.count >= 1, let header = try? JSONDecoder().decode(Header.self, from: file.line(0)) else {
            throw JobError.badSpec(path: path, detail: "not a job set spec")
        }
        var specs: [JobSpec] = []
        for i in 0..<header.shards { specs.append(try readShard(path, index: i)) }
        return JobSetSpec(specs: specs)
    }

    /// Line offsets of recently read spec files, by path (checked against size and modification time).
    final class FileCache: @unchecked Sendable {
        static let shared = FileCache()
        let lock = NSLock()
        var files: [String: Lines] = [:]

        struct Lines {
            var data: Data
            var starts: [Int]  // offset of each line; a final sentinel = data.count
            var size: Int64, mtime: Int
            var count: Int { starts.count - 1 }
            func line(_ k: Int) -> Data { data.subdata(in: starts[k]..<max(starts[k], starts[k + 1] - 1)) }
        }

        func lines(_ path: String) throws -> Lines {
            var st = stat()
            guard stat(path, &st) == 0 else {
                throw JobError.badSpec(path: path, detail: "cannot read it: \(String(cString: strerror(errno)))")
            }
            let mtime = Int(st.st_mtim.tv_sec) * 1_000_000_000 + Int(st.st_mtim.tv_nsec)
            lock.lock()
            if let f = files[path], f.size == Int64(st.st_size), f.mtime == mtime { lock.unlock(); return f }
            lock.unlock()
            guard let data = FileManager.default.contents(atPath: path) else {
                throw JobError.badSpec(path: path, detail: "cannot read it")
            }
            var starts = [0]
            data.withUnsafeBytes { (b: UnsafeRawBufferPointer) in
                for (k, byte) in b.enumerated() where byte == 0x0A { starts.append(k + 1) }
            }
            if starts.last != data.count { starts.append(data.count + 1) }
            let f = Lines(data: data, starts: starts, size: Int64(st.st_size), mtime: mtime)
            lock.lock()
            if files.count > 8 { files.removeAll() }
            files[path] = f
            lock.unlock()
            return f
        }
    }
}
