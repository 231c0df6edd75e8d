@testable import CalibCLI
import CalibTestSupport
import Foundation
import Testing

@Suite struct HelpTextTests {
    /// Hard-wrapped paragraph lines are joined; headings, list items, indented examples and blank lines stay.
    @Test func reflowJoinsParagraphsOnly() {
        let text = """
        First paragraph line one
        continues here.

        Steps:
        - one item
        - two items
        1. numbered
        Example:
          calibctl fit gain a.h5 -o b.h5
          calibctl fit gain c.h5
        Last line
        and its end.
        """
        #expect(reflow(text) == """
        First paragraph line one continues here.

        Steps:
        - one item
        - two items
        1. numbered
        Example:
          calibctl fit gain a.h5 -o b.h5
          calibctl fit gain c.h5
        Last line and its end.
        """)
    }

    /// Every command's help, rendered at 100 columns, has no line of one or two words inside a paragraph (what
    /// hard-wrapped source lines used to leave behind).
    @Test func helpHasNoOrphanLines() throws {
        for args in [["--help"], ["fit", "gain", "--help"], ["tick", "--help"], ["bench", "fit", "--help"],
                     ["pixelgain", "create", "--help"], ["store", "--help"], ["checklist", "--help"]] {
            let r = try calibctl(args, environment: ["COLUMNS": "100"])
            let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let end = lines.firstIndex { $0.hasPrefix("USAGE:") } ?? lines.count
            for i in 1..<max(end - 1, 1) where !lines[i].isEmpty && !lines[i].hasPrefix(" ") {
                let words = lines[i].split(separator: " ").count
                let next = lines[i + 1]
                #expect(words > 2 || next.isEmpty || next.hasPrefix(" ") || lines[i].hasSuffix(":"),
                        "\(args.joined(separator: " ")): orphan line '\(lines[i])'")
            }
        }
    }
}
