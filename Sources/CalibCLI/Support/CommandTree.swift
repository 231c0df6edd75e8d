import ArgumentParser
import CalibCore
import Foundation

/// The command tree as the user types it: names and aliases, "did you mean" for unknown commands, and help whose
/// examples are never wrapped in the middle of a command.
enum CommandTree {
    /// The names a command answers to: its name, then its aliases.
    static func names(_ command: ParsableCommand.Type) -> [String] {
        [command._commandName] + command.configuration.aliases
    }

    static func child(_ command: ParsableCommand.Type, named word: String) -> ParsableCommand.Type? {
        command.configuration.subcommands.first { names($0).contains(word) }
    }

    /// Follows `words` down from the root: the deepest command reached, the path of names to it, and how many words
    /// were used.
    static func resolve(_ words: [String], from root: ParsableCommand.Type = Calibctl.self)
        -> (command: ParsableCommand.Type, path: [String], used: Int) {
        var command = root, path = [root._commandName], used = 0
        for w in words {
            guard !w.hasPrefix("-"), let next = child(command, named: w) else { break }
            command = next
            path.append(next._commandName)
            used += 1
        }
        return (command, path, used)
    }

    /// The leading words of a command line, up to the first option.
    static func leadingWords(_ arguments: [String]) -> [String] {
        Array(arguments.prefix { !$0.hasPrefix("-") })
    }

    /// An unknown command or help topic, with the closest name as a suggestion (exit 64).
    static func unknownCommand(_ word: String, under path: [String], among command: ParsableCommand.Type) -> UsageError {
        let known = command.configuration.subcommands.filter { $0.configuration.shouldDisplay }.flatMap(names)
        let where_ = path.joined(separator: " ")
        let list = "`\(where_) --help` explains them"
        return UsageError("'\(word)' is not a \(where_) command",
                          fix: Suggestions.didYouMean(word, in: known).map { "\($0) (\(list))" }
                            ?? "the commands are \(known.joined(separator: ", ")); \(list)")
    }

    /// Checks the command words before argument-parser sees them: `calibctl stauts` and `calibctl help nonexist`
    /// become usage errors with a suggestion instead of argument-parser's bare "unexpected argument" or the root help.
    static func check(_ arguments: [String]) throws {
        if arguments.first == "help" {
            let words = leadingWords(Array(arguments.dropFirst()))
            if words == ["help"] { return }   // `calibctl help help`: the root help
            let r = resolve(words)
            if r.used < words.count { throw unknownCommand(words[r.used], under: r.path, among: r.command) }
            return
        }
        let words = leadingWords(arguments)
        let r = resolve(words)
        let c = r.command.configuration
        // Only a command group (subcommands, no default, no arguments of its own) can be mistyped this way.
        if r.used < words.count, !c.subcommands.isEmpty, c.defaultSubcommand == nil {
            throw unknownCommand(words[r.used], under: r.path, among: r.command)
        }
    }

    /// `calibctl help ...`, or `-h` / `--help` among the arguments (before a `--`).
    static func isHelpRequest(_ arguments: [String]) -> Bool {
        arguments.first == "help" || arguments.prefix { $0 != "--" }.contains { $0 == "--help" || $0 == "-h" }
    }

    /// The command a help request is about: `calibctl help a b`, `calibctl a b --help`, `calibctl a b -h`.
    static func helpTopic(_ arguments: [String]) -> ParsableCommand.Type {
        resolve(leadingWords(arguments.first == "help" ? Array(arguments.dropFirst()) : arguments)).command
    }

    /// argument-parser's help for `command`, with the overview (abstract and discussion) laid out by `layout`.
    static func help(for command: ParsableCommand.Type, columns: Int) -> String {
        let text = Calibctl.helpMessage(for: command, columns: columns)
        let c = command.configuration
        guard !c.abstract.isEmpty || !c.discussion.isEmpty, let usage = text.range(of: "USAGE: ") else { return text }
        var overview = "OVERVIEW: \(c.abstract)"
        if !c.discussion.isEmpty { overview += (c.abstract.isEmpty ? "\n" : "\n\n") + c.discussion }
        return layout(overview, columns: columns) + "\n\n" + text[usage.lowerBound...]
    }

    /// Wraps prose at word boundaries to `columns`, but never a command example: indented lines are kept as
    /// written (copy-paste must give the whole command), and an `Example: COMMAND` line that does not fit is split
    /// after `Example:`, with the command on its own indented line.
    static func layout(_ text: String, columns: Int) -> String {
        var out: [String] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if line.first == " " || line.first == "\t" || line.count <= columns {
                out.append(line)
                continue
            }
            for prefix in ["Examples: ", "Example: "] where line.hasPrefix(prefix) {
                let rest = line.dropFirst(prefix.count)
                out.append(String(prefix.dropLast()))
                // Several commands written on one line, separated by runs of spaces, go on a line each.
                for command in rest.components(separatedBy: "   ").map({ $0.trimmingCharacters(in: .whitespaces) })
                    where !command.isEmpty {
                    out.append("  " + command)
                }
            }
            if line.hasPrefix("Example: ") || line.hasPrefix("Examples: ") { continue }
            out += wrap(line, columns: columns)
        }
        return out.joined(separator: "\n")
    }

    /// Greedy word wrap; a word longer than the line stays whole.
    static func wrap(_ line: String, columns: Int) -> [String] {
        var lines: [String] = [], current = ""
        for word in line.split(separator: " ", omittingEmptySubsequences: false) {
            if current.isEmpty { current = String(word) }
            else if current.count + 1 + word.count <= columns { current += " " + word }
            else { lines.append(current); current = String(word) }
        }
        lines.append(current)
        return lines
    }
}
