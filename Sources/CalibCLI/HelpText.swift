/// Joins the hard-wrapped lines of each paragraph of a help discussion, so that argument-parser wraps the text to the
/// terminal once (source lines are wrapped at 120 columns; re-wrapped at 80 they left one- and two-word lines).
///
/// A line is joined to the one before it when both are non-empty, neither is indented (examples and commands are),
/// the line is neither a list item (`- `, `* `, `1. `) nor a short heading (at most three words ending with `:`, such
/// as `Example:`), and the one before does not end with `:`. Everything else is kept as written.
func reflow(_ text: String) -> String {
    func isListItem(_ s: Substring) -> Bool {
        if s.hasPrefix("- ") || s.hasPrefix("* ") { return true }
        let digits = s.prefix(while: \.isNumber)
        return !digits.isEmpty && s.dropFirst(digits.count).hasPrefix(". ")
    }
    func isHeading(_ s: Substring) -> Bool { s.hasSuffix(":") && s.split(separator: " ").count <= 3 }
    var out: [String] = []
    var previousJoinable = false
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
        let indented = line.first.map { $0 == " " || $0 == "\t" } ?? false
        let joinable = !line.isEmpty && !indented
        if joinable && previousJoinable && !isListItem(line) && !isHeading(line), let last = out.last, !last.hasSuffix(":") {
            out[out.count - 1] = last + " " + line
        } else {
            out.append(String(line))
        }
        previousJoinable = joinable
    }
    return out.joined(separator: "\n")
}
