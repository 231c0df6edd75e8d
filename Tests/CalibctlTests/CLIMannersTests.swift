import ArgumentParser
@testable import CalibCLI
import CalibTestSupport
import Foundation
import Testing

/// The command line as a new user meets it: typos, help, tables (issue 16, "the command line's manners").
@Suite struct CLIMannersTests {
    /// Every command type of the tree with its path of names.
    static func allCommands() -> [(path: [String], type: ParsableCommand.Type)] {
        var out: [([String], ParsableCommand.Type)] = []
        func walk(_ t: ParsableCommand.Type, _ path: [String]) {
            out.append((path, t))
            for s in t.configuration.subcommands { walk(s, path + [s._commandName]) }
        }
        walk(Calibctl.self, ["calibctl"])
        return out
    }

    @Test func mistypedCommandsGetASuggestion() throws {
        let tmp = TemporaryDirectory()
        let r = try calibctl(["stauts", "5000"])
        #expect(r.status == 64 && r.stderr.contains("'stauts' is not a calibctl command") && r.stderr.contains("did you mean 'status'?"), "\(r.stderr)")
        let sub = try calibctl(["store", "lst", "tags"])
        #expect(sub.status == 64 && sub.stderr.contains("did you mean 'list'?"), "\(sub.stderr)")
        // hadd is run.py's word for merge: an alias, not a typo.
        let hadd = try calibctl(["hadd", "5000", "--home", tmp.path])
        #expect(hadd.status == 64 && hadd.stderr.contains("run 5000 has not been created"), "\(hadd.stderr)")
        #expect(try calibctl(["hadd", "--help"]).stdout.contains("Merge the per-FED fit outputs"))
        let help = try calibctl(["help", "nonexist"])
        #expect(help.status == 64 && help.stdout.isEmpty && help.stderr.contains("the commands are create, submit, status"), "\(help.stderr)")
        let helpTypo = try calibctl(["help", "store", "histroy"])
        #expect(helpTypo.status == 64 && helpTypo.stderr.contains("did you mean 'history'?"), "\(helpTypo.stderr)")
        let ok = try calibctl(["help", "store", "history"])
        #expect(ok.status == 0 && ok.stdout.contains("USAGE: calibctl store history"))
        // Options and their values are never taken for commands.
        #expect(try calibctl(["--version"]).status == 0)
    }

    /// No example is wrapped in the middle of a command, at any width: each `calibctl ...` example of every command's
    /// discussion appears whole on one line of its help.
    @Test func helpExamplesAreNeverWrapped() throws {
        for (path, type) in Self.allCommands() {
            let discussion = type.configuration.discussion
            var examples: [String] = []
            for raw in discussion.split(separator: "\n") {
                let line = raw.trimmingCharacters(in: .whitespaces)
                if raw.first == " ", line.hasPrefix("calibctl ") { examples.append(line); continue }
                guard let p = ["Examples:", "Example:"].first(where: { line.hasPrefix($0) }) else { continue }
                examples += line.dropFirst(p.count).components(separatedBy: "   ")
                    .map { $0.trimmingCharacters(in: .whitespaces) }.filter { $0.hasPrefix("calibctl ") }
            }
            for columns in [60, 80, 120] {
                let help = CommandTree.help(for: type, columns: columns)
                let lines = help.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                for e in examples {
                    #expect(lines.contains { $0.contains(e) }, "\(path.joined(separator: " ")) at \(columns) columns: '\(e)' is wrapped")
                }
            }
        }
        // Through the binary too, at the width argument-parser would use.
        let r = try calibctl(["store", "export", "--help"], environment: ["COLUMNS": "60"])
        #expect(r.stdout.contains("\n  calibctl store export jf4m --lcls exp/calib --tag default\n"), "\(r.stdout)")
    }

    /// Every option of every command says what it is for (not only its default).
    @Test func everyOptionHasADescription() {
        for (path, type) in Self.allCommands() {
            let help = Calibctl.helpMessage(for: type, columns: 200)
            let lines = help.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            for (i, line) in lines.enumerated() where line.hasPrefix("  -") {
                // argument-parser puts the description at column 26, or on the next line under a long label.
                let sameLine = line.count > 26 && line[line.index(line.startIndex, offsetBy: 25)] == " "
                let text = (sameLine ? String(line.dropFirst(26)) : (i + 1 < lines.count ? lines[i + 1] : ""))
                    .trimmingCharacters(in: .whitespaces)
                let parts = [line.trimmingCharacters(in: .whitespaces)]
                #expect(!text.isEmpty && !text.hasPrefix("(default:") && !text.hasPrefix("-"),
                        "\(path.joined(separator: " ")): option '\(parts.first ?? line)' has no description")
            }
        }
    }

    @Test func tablesFitAndColour() {
        var t = TextTable([.init("#", .right, dropOrder: 2), .init("step", truncatable: true, minWidth: 8),
                           .init("state", style: TextTable.stateStyle), .init("owner", dropOrder: 5),
                           .init("n", .right)],
                          rows: [["", "a-very-long-step-name-indeed", "failed", "Someone Important", "1"],
                                 ["", "b", "awaiting-sign-off", "X", "12"]],
                          footer: [["", "totals", "", "", "13"]])
        let wide = t.render(width: nil, colour: false).split(separator: "\n").map(String.init)
        // The empty # column is not shown; numbers are right-aligned under their header, totals included.
        #expect(wide[0].hasPrefix("step ") && !wide[0].contains("#"))
        #expect(wide.allSatisfy { $0.count <= wide[0].count } && wide.last!.hasSuffix("13") && wide[0].hasSuffix(" n"))
        #expect(wide[1].count == wide[0].count && wide.last!.count == wide[0].count)
        let narrow = t.render(width: 40, colour: false).split(separator: "\n").map(String.init)
        #expect(narrow.allSatisfy { $0.count <= 40 }, "\(narrow)")
        #expect(!narrow[0].contains("owner") && narrow[1].contains("…"))
        let coloured = t.render(width: nil, colour: true)
        #expect(coloured.contains("\u{1B}[31mfailed\u{1B}[0m") && coloured.contains("\u{1B}[33mawaiting-sign-off\u{1B}[0m"))
        t.rows[0][2] = "stale"
        #expect(t.render(width: nil, colour: true).contains("\u{1B}[35mstale"))
        // Colour only on a terminal, never with NO_COLOR.
        #expect(Terminal.colour(environment: [:], stdoutIsTerminal: true))
        #expect(!Terminal.colour(environment: [:], stdoutIsTerminal: false))
        #expect(!Terminal.colour(environment: ["NO_COLOR": "1"], stdoutIsTerminal: true))
        #expect(!Terminal.colour(environment: ["NO_COLOR": "1", "CLICOLOR_FORCE": "1"], stdoutIsTerminal: false))
        #expect(Terminal.colour(environment: ["CLICOLOR_FORCE": "1"], stdoutIsTerminal: false))
        #expect(Terminal.width(environment: ["COLUMNS": "77"]) == 77)
    }

    @Test func checklistAndReportTablesThroughTheBinary() throws {
        let tmp = TemporaryDirectory()
        let env = ["CALIBCTL_HOME": tmp.file("home")]
        let checklists = TestPaths.fixtures + "/checklists"
        _ = try calibctl(["campaign", "create", "rgx", "--checklist", "\(checklists)/clas12-rgx.yaml", "--runs", "1-3"], environment: env)
        _ = try calibctl(["campaign", "create", "gain", "--checklist", "\(checklists)/cms-pixel-gain.yaml", "--runs", "1"], environment: env)
        _ = try calibctl(["step", "start", "gain", "vcal-tag"], environment: env)
        _ = try calibctl(["step", "fail", "gain", "vcal-tag"], environment: env)
        for columns in [60, 80, 100] {
            for args in [["checklist", "show", "--campaign", "rgx"], ["report", "--campaign", "rgx"], ["checklist", "show", "--campaign", "gain"]] {
                let r = try calibctl(args, environment: env.merging(["COLUMNS": "\(columns)"]) { $1 })
                #expect(r.status == 0)
                for line in r.stdout.split(separator: "\n") {
                    #expect(line.count <= columns, "\(args.joined(separator: " ")) at \(columns): \(line.count) characters")
                }
            }
        }
        // Unnumbered steps: no '#' column at all; a pipe gets no colour, CLICOLOR_FORCE does, NO_COLOR wins.
        let gain = try calibctl(["checklist", "show", "--campaign", "gain"], environment: env)
        #expect(gain.stdout.split(separator: "\n")[1].hasPrefix("step ") && !gain.stdout.contains("\u{1B}["))
        let forced = try calibctl(["checklist", "show", "--campaign", "gain"], environment: env.merging(["CLICOLOR_FORCE": "1", "NO_COLOR": ""]) { $1 })
        #expect(forced.stdout.contains("\u{1B}[31mfailed\u{1B}[0m"))
        let no = try calibctl(["checklist", "show", "--campaign", "gain"], environment: env.merging(["CLICOLOR_FORCE": "1", "NO_COLOR": "1"]) { $1 })
        #expect(!no.stdout.contains("\u{1B}["))
        // The report's totals line up with the columns above them.
        // (The table ends at the blank line; the footnotes on the derived columns follow it.)
        let lines = try calibctl(["report", "--campaign", "gain"], environment: env).stdout.split(separator: "\n", omittingEmptySubsequences: false)
        let report = lines.prefix { !$0.isEmpty }.map(String.init)
        #expect(lines.contains { $0.hasPrefix("fairshare (days): CPU hours") } && lines.contains { $0.hasPrefix("disk (TB/iteration): disk written") })
        let header = report[1], totals = report.last!
        #expect(totals.hasPrefix("totals") && totals.count == header.count, "\(report)")
        #expect(report.dropFirst(2).allSatisfy { $0.count == header.count || $0.allSatisfy { $0 == "-" } })
    }

    /// Provenance comments are short on the line (no run configuration, at most 100 characters), whole with
    /// --verbose and --json.
    @Test func provenanceLinesAreShort() throws {
        let tmp = TemporaryDirectory()
        let env = ["CALIBCTL_HOME": tmp.file("home"), "CALIBCTL_STORE": tmp.file("store")]
        func run(_ args: [String]) throws -> ProcessResult { try calibctl(args, environment: env, currentDirectory: TestPaths.packageRoot) }
        #expect(try run(["store", "init"]).status == 0)
        #expect(try run(["store", "detector", "add", "jf4m", "--kind", "jungfrau"]).status == 0)
        let config = "config {" + String(repeating: "\"key\":1,", count: 150) + "\"end\":2}"
        let comment = "dark run 98; " + String(repeating: "fit outputs abc ", count: 10) + "; " + config
        #expect(try run(["put", "jf4m", "pedestals", "Fixtures/exit-codes/pedestals.txt", "--runs", "1-2", "--comment", comment]).status == 0)
        for args in [["store", "list", "iovs"], ["get", "jf4m", "pedestals", "--run", "1"], ["store", "history", "jf4m", "pedestals"],
                     ["store", "explain", "jf4m", "pedestals", "--run", "1"]] {
            let short = try run(args)
            #expect(short.status == 0 && short.stdout.contains("\"dark run 98; fit outputs") && !short.stdout.contains("config {"), "\(args): \(short.stdout)")
            #expect(short.stdout.split(separator: "\n").allSatisfy { $0.count < 250 } && short.stdout.contains("…\""))
            let long = try run(args + ["--verbose"])
            #expect(long.stdout.contains(config), "\(args) --verbose")
        }
        #expect(try run(["store", "list", "iovs", "--json"]).stdout.contains("\\\"end\\\":2}"))
    }

    /// Completion scripts call back into calibctl for campaign, step, detector, type and tag names; the callback
    /// reads the workspace and store read-only and fails silently.
    @Test func completionOfNames() throws {
        let tmp = TemporaryDirectory()
        let env = ["CALIBCTL_HOME": tmp.file("home"), "CALIBCTL_STORE": tmp.file("store")]
        func run(_ args: [String], _ e: [String: String]? = nil) throws -> ProcessResult {
            try calibctl(args, environment: e ?? env, currentDirectory: TestPaths.packageRoot)
        }
        _ = try run(["campaign", "create", "demo", "--checklist", "Fixtures/checklists/cms-pixel-gain.yaml", "--runs", "1"])
        _ = try run(["campaign", "create", "other", "--checklist", "Fixtures/exit-codes/approvers.yaml", "--runs", "1"])
        _ = try run(["store", "init"])
        _ = try run(["store", "detector", "add", "jf4m", "--kind", "jungfrau"])
        _ = try run(["put", "jf4m", "pedestals", "Fixtures/exit-codes/pedestals.txt", "--runs", "1-2", "--tag", "cxi_v1", "--create-tag"])
        func complete(_ path: [String], _ arg: String, _ line: [String], _ e: [String: String]? = nil) throws -> [String] {
            let r = try run(["---completion"] + path + ["--", arg, String(line.count - 1), String(line.last!.count)] + line, e)
            #expect(r.status == 0 && r.stderr.isEmpty, "\(r.stderr)")
            return r.stdout.split(separator: "\n").map(String.init)
        }
        #expect(try complete(["step", "start"], "positional@0", ["calibctl", "step", "start", ""]) == ["demo", "other"])
        #expect(try complete(["step", "start"], "positional@0", ["calibctl", "step", "start", "d"]) == ["demo"])
        #expect(try complete(["step", "start"], "positional@1", ["calibctl", "step", "start", "other", ""]) == ["check"])
        #expect(try complete(["step", "start"], "positional@1", ["calibctl", "step", "start", "demo", "ga"]) == ["gain-fit"])
        #expect(try complete(["checklist", "show"], "--campaign", ["calibctl", "checklist", "show", "--campaign", ""]) == ["demo", "other"])
        #expect(try complete(["get"], "positional@0", ["calibctl", "get", ""]) == ["jf4m"])
        #expect(try complete(["get"], "positional@1", ["calibctl", "get", "jf4m", "ped"]) == ["pedestals"])
        #expect(try complete(["get"], "--tag", ["calibctl", "get", "jf4m", "pedestals", "--tag", ""]).contains("cxi_v1"))
        // --home on the line being completed wins; a missing workspace completes nothing and creates nothing.
        #expect(try complete(["step", "start"], "positional@0", ["calibctl", "step", "start", "--home", tmp.file("nohome"), ""]).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: tmp.file("nohome")))
        let missing = ["CALIBCTL_HOME": tmp.file("none"), "CALIBCTL_STORE": tmp.file("none/store")]
        #expect(try complete(["get"], "positional@0", ["calibctl", "get", ""], missing).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: tmp.file("none")))
        // The scripts name the callbacks.
        for shell in ["bash", "zsh", "fish"] {
            let script = try run(["--generate-completion-script", shell]).stdout
            #expect(script.contains("---completion step start -- positional@1"), "\(shell)")
        }
    }

    /// The README's quick start for a built binary works as written (in a temporary directory).
    @Test func readmeQuickStartRuns() throws {
        let readme = try String(contentsOfFile: TestPaths.packageRoot + "/README.md", encoding: .utf8)
        guard let start = readme.range(of: "Quick start for someone who already holds a built `calibctl`"),
              let block = readme[start.upperBound...].range(of: "```sh\n"),
              let end = readme[block.upperBound...].range(of: "```") else { Issue.record("no quick start in README.md"); return }
        let commands = readme[block.upperBound..<end.lowerBound].split(separator: "\n")
            .map { $0.components(separatedBy: "#")[0].trimmingCharacters(in: .whitespaces) }
        #expect(commands.count == 3 && commands.allSatisfy { $0.hasPrefix("calibctl ") })
        let tmp = TemporaryDirectory()
        for c in commands {
            let args = c.replacingOccurrences(of: "/tmp/calibctl-try", with: tmp.path).split(separator: " ").dropFirst().map(String.init)
            let r = try calibctl(args, environment: ["CALIBCTL_HOME": tmp.file("home")])
            #expect(r.status == 0 && !r.stdout.isEmpty, "\(c): \(r.stderr)")
        }
        // Exactly the two main commands stay above it.
        #expect(readme.components(separatedBy: "./scripts/").count - 1 == 2)
    }

    /// `checklist graph` draws the transitive reduction by default (CLAS12: 44 of 95 edges) with the same
    /// reachability as the full graph; --full draws every edge.
    @Test func graphIsTransitivelyReduced() throws {
        let file = TestPaths.fixtures + "/checklists/clas12-rgx.yaml"
        func edges(_ extra: [String]) throws -> [(String, String)] {
            let r = try calibctl(["checklist", "graph", file] + extra)
            #expect(r.status == 0)
            return r.stdout.split(separator: "\n").compactMap { line in
                let parts = line.components(separatedBy: " -> ")
                guard parts.count == 2 else { return nil }
                let id = { (s: String) in s.trimmingCharacters(in: .whitespaces).split(separator: "\"").first.map(String.init) ?? s }
                return (id(parts[0]), id(parts[1]))
            }
        }
        let reduced = try edges([]), full = try edges(["--full"])
        #expect(reduced.count == 44 && full.count == 95)
        func closure(_ e: [(String, String)]) -> Set<String> {
            var next: [String: [String]] = [:]
            for (a, b) in e { next[a, default: []].append(b) }
            var out = Set<String>()
            for start in next.keys {
                var stack = next[start] ?? [], seen = Set<String>()
                while let x = stack.popLast() {
                    guard seen.insert(x).inserted else { continue }
                    out.insert("\(start)>\(x)")
                    stack += next[x] ?? []
                }
            }
            return out
        }
        #expect(closure(reduced) == closure(full))
        let mermaid = try calibctl(["checklist", "graph", file, "--format", "mermaid"]).stdout
        #expect(mermaid.components(separatedBy: " --> ").count - 1 == 44)
    }
}
