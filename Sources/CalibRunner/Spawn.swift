import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Process helpers over posix_spawn(3), kill(2) and /proc, for the local scheduler and the tick lock.
public enum Spawn {
    /// Options of one spawned child.
    public struct Options {
        public var directory: String?
        public var stdinPath: String = "/dev/null"
        public var stdoutPath: String = "/dev/null"
        public var stderrPath: String = "/dev/null"
        public var appendOutput = false
        /// Keep the caller's stdout and stderr (the paths above are ignored).
        public var inheritOutput = false
        /// Put the child in its own process group (pgid = pid), so the whole tree can be signalled.
        public var newProcessGroup = false
        /// Make the child a session leader (detached from the terminal and the caller's signals).
        public var newSession = false
        public var environment: [String: String]?

        public init() {}
    }

    /// POSIX_SPAWN_SETSID (glibc, guarded by _GNU_SOURCE in <spawn.h> so Swift does not import it).
    static let setsidFlag: Int32 = 0x80

    typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
    /// posix_spawn_file_actions_addchdir_np, looked up at run time (also _GNU_SOURCE-only in the header).
    static let addchdir: AddChdir? = {
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addchdir_np") else { return nil }
        return unsafeBitCast(sym, to: AddChdir.self)
    }()

    typealias AddClosefrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    /// posix_spawn_file_actions_addclosefrom_np (glibc >= 2.34), looked up at run time.
    static let closefrom: AddClosefrom? = {
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(sym, to: AddClosefrom.self)
    }()

    /// Starts `argv` (absolute path or found on PATH) with `posix_spawn`; returns its pid.
    public static func spawn(_ argv: [String], _ o: Options) throws -> pid_t {
        precondition(!argv.isEmpty)
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        let outFlags = O_WRONLY | O_CREAT | (o.appendOutput ? O_APPEND : O_TRUNC)
        posix_spawn_file_actions_addopen(&fa, 0, o.stdinPath, O_RDONLY, 0)
        if !o.inheritOutput {
            posix_spawn_file_actions_addopen(&fa, 1, o.stdoutPath, outFlags, 0o644)
            if o.stderrPath == o.stdoutPath {
                posix_spawn_file_actions_adddup2(&fa, 1, 2)
            } else {
                posix_spawn_file_actions_addopen(&fa, 2, o.stderrPath, outFlags, 0o644)
            }
        }
        // Nothing but 0-2 reaches the child: a detached executor must not keep a caller's pipes open.
        if let closefrom = Spawn.closefrom { _ = closefrom(&fa, 3) }
        if let d = o.directory {
            guard let addchdir = Spawn.addchdir else {
                throw SchedulerError(scheduler: "local", operation: "spawn \(argv[0])",
                                     detail: "this C library lacks posix_spawn_file_actions_addchdir_np (glibc >= 2.29)")
            }
            _ = d.withCString { addchdir(&fa, $0) }
        }

        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        if o.newProcessGroup { flags |= Int32(POSIX_SPAWN_SETPGROUP); posix_spawnattr_setpgroup(&attr, 0) }
        if o.newSession { flags |= Spawn.setsidFlag }
        posix_spawnattr_setflags(&attr, Int16(flags))
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)
        var all = sigset_t()
        sigemptyset(&all)
        for s in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD] { sigaddset(&all, s) }
        posix_spawnattr_setsigdefault(&attr, &all)

        let env = (o.environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        var cargv: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        var cenv: [UnsafeMutablePointer<CChar>?] = env.map { strdup($0) } + [nil]
        defer {
            for p in cargv { free(p) }
            for p in cenv { free(p) }
        }
        var pid: pid_t = 0
        let rc = argv[0].contains("/")
            ? posix_spawn(&pid, argv[0], &fa, &attr, &cargv, &cenv)
            : posix_spawnp(&pid, argv[0], &fa, &attr, &cargv, &cenv)
        guard rc == 0 else {
            throw SchedulerError(scheduler: "local", operation: "spawn \(argv[0])",
                                 detail: String(cString: strerror(rc)))
        }
        return pid
    }

    /// Starts `argv` fully detached: in a new session, reparented to init (a double fork through /bin/sh), so it
    /// survives the caller and never becomes the caller's zombie. Returns once the intermediate shell has exited.
    public static func detach(_ argv: [String], logPath: String) throws {
        var o = Options()
        o.newSession = true
        o.stdoutPath = logPath
        o.stderrPath = logPath
        o.appendOutput = true
        let pid = try spawn(["/bin/sh", "-c", "\"$@\" </dev/null >>\"$0\" 2>&1 &", logPath] + argv, o)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }

    /// The kernel's start time of a process (clock ticks since boot, /proc/PID/stat field 22) and whether it is a
    /// zombie; nil if there is no such process. Together with the pid it identifies a process across pid reuse.
    public static func processStart(_ pid: pid_t) -> (start: UInt64, zombie: Bool)? {
        guard pid > 0, let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // fields[0] is the state (field 3); field 22 is fields[19].
        guard fields.count > 19, let start = UInt64(fields[19]) else { return nil }
        return (start, fields[0] == "Z" || fields[0] == "X")
    }

    /// True if `pid` is a live (non-zombie) process whose start time is `start` (when given).
    public static func isAlive(_ pid: pid_t, start: UInt64? = nil) -> Bool {
        guard let p = processStart(pid), !p.zombie else { return false }
        if let start, start != 0 { return p.start == start }
        return true
    }

    /// Splits a wait status (the macros WIFEXITED etc. are not importable): (exit code, signal).
    public static func decode(waitStatus s: Int32) -> (exit: Int32?, signal: Int32?) {
        let sig = s & 0x7f
        if sig == 0 { return ((s >> 8) & 0xff, nil) }
        return (nil, sig)
    }

    /// This host's name as calibctl records it (lock files, executor records).
    public static var hostName: String {
        var buf = [CChar](repeating: 0, count: 256)
        gethostname(&buf, 255)
        return buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}
