import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs one scheduler tool (no shell) with a deadline: a tool that hangs is sent SIGTERM, then SIGKILL after two
/// seconds, and the call throws a transient `SchedulerError` instead of hanging calibctl.
///
/// The tool must not outlive calibctl (issue 14, defect 6: a `jobs submit` killed while its `sbatch` still ran left the
/// `sbatch` to submit an array that nobody recorded, and the next tick submitted a second one). So the tool is started
/// with `posix_spawn` in calibctl's OWN process group (a signal to the group, e.g. Ctrl-C or a cron timeout, reaches
/// it; Foundation's `Process` made it a session leader), and, where util-linux `setpriv` exists, with
/// `PR_SET_PDEATHSIG = SIGKILL`, so the kernel kills it when calibctl dies, even by SIGKILL. `onStart` gets the
/// tool's pid right after the spawn (the Slurm adapter records an in-flight marker with it).
enum BoundedProcess {
    /// `setpriv` (util-linux >= 2.33) sets the parent-death signal and then execs the tool.
    static let setpriv: String? = ["/usr/bin/setpriv", "/bin/setpriv"].first { FileManager.default.isExecutableFile(atPath: $0) }

    static func run(executable: String, arguments: [String], environment: [String: String], currentDirectory: String?,
                    timeoutSeconds: Double, scheduler: String, operation: String,
                    onStart: ((pid_t) -> Void)? = nil) throws -> ToolOutput {
        var environment = environment
        if let currentDirectory { environment["PWD"] = currentDirectory }  // wrappers (the test pool's) read $PWD
        var outPipe: [Int32] = [-1, -1], errPipe: [Int32] = [-1, -1]
        guard pipe(&outPipe) == 0 else {
            throw SchedulerError(scheduler: scheduler, operation: operation, detail: "pipe: \(String(cString: strerror(errno)))")
        }
        guard pipe(&errPipe) == 0 else {
            close(outPipe[0]); close(outPipe[1])
            throw SchedulerError(scheduler: scheduler, operation: operation, detail: "pipe: \(String(cString: strerror(errno)))")
        }
        for fd in outPipe + errPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&fa, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&fa, errPipe[1], 2)
        if let closefrom = Spawn.closefrom { _ = closefrom(&fa, 3) }
        if let d = currentDirectory, let addchdir = Spawn.addchdir { _ = d.withCString { addchdir(&fa, $0) } }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attr, &defaults)

        let argv = (setpriv.map { [$0, "--pdeathsig", "KILL", "--"] } ?? []) + [executable] + arguments
        var cargv: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        var cenv: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in cargv { free(p) }
            for p in cenv { free(p) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &fa, &attr, &cargv, &cenv)
        close(outPipe[1]); close(errPipe[1])
        guard rc == 0 else {
            close(outPipe[0]); close(errPipe[0])
            throw SchedulerError(scheduler: scheduler, operation: operation,
                                 detail: "cannot start \(executable): \(String(cString: strerror(rc)))")
        }
        onStart?(pid)
        defer { close(outPipe[0]); close(errPipe[0]) }

        var stdout = Data(), stderr = Data()
        var open = [outPipe[0], errPipe[0]]
        var status: Int32 = 0
        var exited = false
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        var drainUntil: Date?  // after the exit: a grandchild may keep a pipe open; read at most 5 s more
        var buf = [UInt8](repeating: 0, count: 65536)
        func reap(_ flags: Int32) -> Bool {
            while true {
                let r = waitpid(pid, &status, flags)
                if r == pid { return true }
                if r < 0 && errno == EINTR { continue }
                return false
            }
        }
        while true {
            if !exited, reap(WNOHANG) { exited = true; drainUntil = Date().addingTimeInterval(5) }
            if exited && (open.isEmpty || Date() > drainUntil!) { break }
            if !exited && Date() > deadline {
                kill(pid, SIGTERM)
                let t = Date().addingTimeInterval(2)
                while !reap(WNOHANG) && Date() < t { usleep(20_000) }
                if kill(pid, 0) == 0 { kill(pid, SIGKILL); _ = reap(0) }
                let partial = String(decoding: stderr, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                let shown = ([executable] + arguments.prefix(6)).joined(separator: " ")
                throw SchedulerError(
                    scheduler: scheduler, operation: operation,
                    detail: "`\(shown)` did not finish within \(timeoutSeconds) s and was killed; the \(scheduler) controller may be down or overloaded"
                        + (partial.isEmpty ? "" : " (stderr: \(partial.prefix(300)))"))
            }
            if open.isEmpty { usleep(10_000); continue }
            var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let n = poll(&fds, nfds_t(fds.count), 50)
            if n <= 0 { continue }
            for p in fds where p.revents != 0 {
                let got = read(p.fd, &buf, buf.count)
                if got > 0 {
                    if p.fd == outPipe[0] { stdout.append(contentsOf: buf[0..<got]) } else { stderr.append(contentsOf: buf[0..<got]) }
                } else if got == 0 || (errno != EINTR && errno != EAGAIN) {
                    open.removeAll { $0 == p.fd }
                }
            }
        }
        let (code, signal) = Spawn.decode(waitStatus: status)
        return ToolOutput(status: code ?? (128 + (signal ?? 0)), stdout: String(decoding: stdout, as: UTF8.self),
                          stderr: String(decoding: stderr, as: UTF8.self))
    }
}
