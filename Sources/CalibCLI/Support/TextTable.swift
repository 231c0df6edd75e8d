import CalibCore

/// The one text-table renderer of the CLI: left-aligned text and right-aligned numbers separated by two spaces,
/// fitted to the terminal's width, states coloured on a terminal.
///
/// Fitting (when a width is known, see `Terminal.width`): columns whose cells are all empty are never shown; when the
/// table is wider than the terminal, low-priority columns are dropped (highest `dropOrder` first) as long as cutting
/// the truncatable columns to their minimum would not be enough, then the widest truncatable cells are cut with `…`.
/// Without a width (a pipe or a file) nothing is cut, so scripts see every character.
struct TextTable {
    enum Alignment: Sendable { case left, right }

    struct Column {
        var header: String
        var alignment: Alignment = .left
        /// 0: always shown; otherwise columns with a higher order are dropped first when the table does not fit.
        var dropOrder: Int = 0
        /// Long cells may be cut with an ellipsis, down to `minWidth` characters.
        var truncatable = false
        var minWidth = 10
        /// The colour of a cell, given its text (used only when colour is on).
        var style: ((String) -> ANSIStyle?)? = nil

        init(_ header: String, _ alignment: Alignment = .left, dropOrder: Int = 0, truncatable: Bool = false,
             minWidth: Int = 10, style: ((String) -> ANSIStyle?)? = nil) {
            self.header = header
            self.alignment = alignment
            self.dropOrder = dropOrder
            self.truncatable = truncatable
            self.minWidth = minWidth
            self.style = style
        }
    }

    var columns: [Column]
    var rows: [[String]] = []
    /// Rows below a rule, such as totals.
    var footer: [[String]] = []

    init(_ columns: [Column], rows: [[String]] = [], footer: [[String]] = []) {
        self.columns = columns
        self.rows = rows
        self.footer = footer
    }

    /// Renders for stdout: the terminal's width and colour setting (`Terminal`).
    func render() -> String { render(width: Terminal.width(), colour: Terminal.colour()) }

    func render(width: Int?, colour: Bool) -> String {
        let all = rows + footer
        func cell(_ r: [String], _ i: Int) -> String { i < r.count ? r[i] : "" }
        // Columns with no value at all are not shown (a header over nothing only confuses).
        var shown = columns.indices.filter { i in all.contains { !cell($0, i).isEmpty } }
        var widths: [Int: Int] = [:]
        for i in columns.indices {
            widths[i] = all.reduce(columns[i].header.count) { max($0, cell($1, i).count) }
        }
        func total(_ cols: [Int], _ w: (Int) -> Int) -> Int { cols.reduce(0) { $0 + w($1) } + 2 * max(cols.count - 1, 0) }
        func minimal(_ i: Int) -> Int {
            columns[i].truncatable ? min(widths[i]!, max(columns[i].minWidth, columns[i].header.count)) : widths[i]!
        }
        if let width {
            while total(shown, minimal) > width,
                  let drop = shown.filter({ columns[$0].dropOrder > 0 }).max(by: { columns[$0].dropOrder < columns[$1].dropOrder }) {
                shown.removeAll { $0 == drop }
            }
            var excess = total(shown, { widths[$0]! }) - width
            while excess > 0, let widest = shown.filter({ widths[$0]! > minimal($0) }).max(by: { widths[$0]! < widths[$1]! }) {
                widths[widest]! -= 1
                excess -= 1
            }
        }
        func line(_ r: [String], isHeader: Bool) -> String {
            var parts: [String] = []
            for (k, i) in shown.enumerated() {
                let c = columns[i], w = widths[i]!
                var text = isHeader ? c.header : cell(r, i)
                if text.count > w { text = String(text.prefix(max(w - 1, 0))) + "…" }
                let pad = String(repeating: " ", count: w - text.count)
                let styled = !isHeader && colour ? (c.style?(text).map { $0.apply(text) } ?? text) : text
                let last = k == shown.count - 1
                parts.append(c.alignment == .right ? pad + styled : styled + (last ? "" : pad))
            }
            var s = parts.joined(separator: "  ")
            while s.last == " " { s.removeLast() }
            return s
        }
        var out = [line([], isHeader: true)]
        out += rows.map { line($0, isHeader: false) }
        if !footer.isEmpty {
            out.append(String(repeating: "-", count: total(shown, { widths[$0]! })))
            out += footer.map { line($0, isHeader: false) }
        }
        return out.joined(separator: "\n") + "\n"
    }

    /// The colour of a step or job state: failures red, waiting for a person yellow, stale magenta, done green,
    /// running cyan; the rest plain.
    static func stateStyle(_ text: String) -> ANSIStyle? {
        let state = text.split(separator: " ").first.map(String.init) ?? text
        switch state {
        case "failed", "lost", "held": return .red
        case "awaiting-sign-off", "awaiting-validation": return .yellow
        case "stale", "cancelled": return .magenta
        case "done", "succeeded": return .green
        case "running", "submitted", "pending": return .cyan
        default: return nil
        }
    }
}

extension TextTable {
    /// `checklist show`: owner, phase and prerequisites give way first on a narrow terminal; unmet stays.
    static func checklist(_ o: CampaignOverview) -> TextTable {
        let h = ChecklistRendering.tableHeader
        return TextTable([
            Column(h[0], .right, dropOrder: 3), Column(h[1], truncatable: true, minWidth: 16),
            Column(h[2], dropOrder: 5, truncatable: true), Column(h[3], dropOrder: 6, truncatable: true),
            Column(h[4], style: stateStyle), Column(h[5], .right, dropOrder: 2),
            Column(h[6], dropOrder: 4, truncatable: true, minWidth: 14), Column(h[7], truncatable: true, minWidth: 14),
        ], rows: ChecklistRendering.tableRows(o))
    }

    /// `report`: the survey table with its totals under a rule; wall time, disk held and events give way first.
    static func report(_ r: CampaignReport) -> TextTable {
        let h = ReportRendering.header
        // #, step, state, iterations, runs, events, jobs, CPU h, fairshare, wall h, disk written, disk/iteration, disk held, days
        let drop = [3, 0, 0, 2, 6, 5, 2, 0, 1, 8, 9, 1, 7, 4]
        var columns: [Column] = []
        for (i, name) in h.enumerated() {
            columns.append(Column(name, i >= 3 ? .right : .left, dropOrder: drop[i], truncatable: i == 1, minWidth: 16))
        }
        columns[2].style = TextTable.stateStyle
        return TextTable(columns, rows: r.steps.map(ReportRendering.cells), footer: [ReportRendering.cells(r.totals)])
    }
}

extension TextTable {
    /// Wraps the lines under a table (notes, critical path) at spaces to `width`, continuation lines indented.
    static func fit(_ text: String, width: Int? = Terminal.width()) -> String {
        guard let width, width > 20 else { return text }
        return text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            guard line.count > width else { return String(line) }
            let parts = CommandTree.wrap(String(line), columns: width - 4)
            return ([parts[0]] + parts.dropFirst().map { "    " + $0 }).joined(separator: "\n")
        }.joined(separator: "\n")
    }
}
