import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What calibctl knows about the terminal on stdout: its width and whether to colour.
enum Terminal {
    /// The width to fit tables and help to: `$COLUMNS` if set, else the terminal's width (ioctl TIOCGWINSZ on stdout),
    /// else nil (stdout is a pipe or a file: nothing is cut).
    static func width(environment: [String: String] = ProcessInfo.processInfo.environment) -> Int? {
        if let c = environment["COLUMNS"].flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }), c > 0 { return c }
        guard isatty(1) != 0 else { return nil }
        var ws = winsize()
        guard ioctl(1, UInt(TIOCGWINSZ), &ws) == 0, ws.ws_col > 0 else { return nil }
        return Int(ws.ws_col)
    }

    /// Colour on stdout: only on a terminal, never with `NO_COLOR` set (https://no-color.org), always with
    /// `CLICOLOR_FORCE` set to something other than 0 (unless NO_COLOR is set).
    static func colour(environment: [String: String] = ProcessInfo.processInfo.environment,
                       stdoutIsTerminal: Bool = isatty(1) != 0) -> Bool {
        if let n = environment["NO_COLOR"], !n.isEmpty { return false }
        if let f = environment["CLICOLOR_FORCE"], !f.isEmpty, f != "0" { return true }
        return stdoutIsTerminal && environment["TERM"] != "dumb"
    }
}

/// ANSI SGR styles for table cells.
enum ANSIStyle: String, Sendable {
    case red = "31", green = "32", yellow = "33", blue = "34", magenta = "35", cyan = "36", dim = "2", bold = "1"

    func apply(_ text: String) -> String { "\u{1B}[\(rawValue)m\(text)\u{1B}[0m" }
}
