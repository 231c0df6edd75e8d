import Foundation
import Yams

/// Reads checklist YAML into a `Checklist`, keeping the line of every step and prerequisite (Yams' node API, whose
/// nodes carry a `mark`). Scalars are composed with Yams' basic resolver (no tag regexes) and converted here, and each
/// mapping is indexed once by key text: Yams' `mapping["key"]` resolves tags with regular expressions on every
/// comparison, which made a 10,000-step file take seconds. Structural problems (wrong types, unknown keys, missing fields) are collected, not thrown
/// one at a time; `load` then runs `ChecklistValidator` and throws a `ChecklistError` listing them all.
public enum ChecklistLoader {
    /// The spelling of "every earlier step" in `prerequisites:` (the CLAS12 table's "all the above").
    public static let allAbove = "all-above"

    static let rootKeys = ["checklist", "title", "description", "format", "final", "steps"]
    static let stepKeys = ["id", "number", "title", "phase", "owner", "contact", "prerequisites", "conditions",
                           "inputs", "outcomes", "validation", "documentation", "if_necessary", "estimate_days",
                           "action", "notes", "approvers"]
    static let gateKeys = ["name", "metric", "min", "max", "check"]
    static let actionKeys = ["builtin", "command", "per", "with"]

    /// Loads, parses and validates a checklist file. Throws `ChecklistError` with every issue found.
    public static func load(path: String) throws -> Checklist {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ChecklistError(file: path, issues: [ChecklistIssue(
                file: path, line: 0, message: "cannot read the file: \(error.localizedDescription)",
                fix: "check the path and permissions")])
        }
        return try load(yaml: text, file: path)
    }

    /// Parses and validates checklist text. Throws `ChecklistError` with every issue found.
    public static func load(yaml: String, file: String = "<string>") throws -> Checklist {
        let (checklist, issues) = parse(yaml: yaml, file: file)
        var all = issues
        if let checklist { all += ChecklistValidator.validate(checklist) }
        guard all.isEmpty, let checklist else { throw ChecklistError(file: file, issues: all) }
        return checklist
    }

    /// Parses without the graph checks: the checklist (if the structure allowed building one) and structural issues.
    public static func parse(yaml: String, file: String = "<string>") -> (Checklist?, [ChecklistIssue]) {
        var p = Parser(file: file)
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml, Resolver.basic)
        } catch let e as YamlError {
            return (nil, [p.yamlIssue(e)])
        } catch {
            return (nil, [ChecklistIssue(file: file, line: 1, message: "not YAML: \(error)")])
        }
        guard let root, let map = root.mapping else {
            return (nil, [ChecklistIssue(file: file, line: root?.mark?.line ?? 1,
                                         message: "a checklist is a mapping with `checklist:` and `steps:`",
                                         fix: "see docs/checklists.md for the format")])
        }
        let c = p.checklist(map, root: root)
        return (c, p.issues)
    }

    /// A mapping indexed once by key text (first occurrence wins).
    struct Fields {
        let node: Node
        let map: Node.Mapping
        private var byKey: [String: Node] = [:]

        init(_ node: Node, _ map: Node.Mapping) {
            self.node = node
            self.map = map
            for (k, v) in map { if let t = k.scalar?.string, byKey[t] == nil { byKey[t] = v } }
        }

        subscript(_ key: String) -> Node? { byKey[key] }
    }

    /// Plain-scalar conversions (YAML 1.2 core schema spellings).
    static func isNull(_ n: Node) -> Bool {
        guard let s = n.scalar, s.style == .plain else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(s.string)
    }
    static func int(_ n: Node) -> Int? {
        guard let s = n.scalar, s.style == .plain else { return nil }
        return Int(s.string.replacingOccurrences(of: "_", with: ""))
    }
    static func double(_ n: Node) -> Double? {
        guard let s = n.scalar, s.style == .plain else { return nil }
        switch s.string {
        case ".inf", ".Inf", ".INF", "+.inf": return .infinity
        case "-.inf", "-.Inf", "-.INF": return -.infinity
        default: return Double(s.string.replacingOccurrences(of: "_", with: ""))
        }
    }
    static func bool(_ n: Node) -> Bool? {
        guard let s = n.scalar, s.style == .plain else { return nil }
        switch s.string {
        case "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON": return true
        case "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF": return false
        default: return nil
        }
    }

    struct Parser {
        let file: String
        var issues: [ChecklistIssue] = []

        init(file: String) { self.file = file }

        mutating func issue(_ node: Node?, _ message: String, fix: String? = nil) {
            issues.append(ChecklistIssue(file: file, line: node?.mark?.line ?? 0, column: node?.mark?.column ?? 1,
                                         message: message, fix: fix))
        }

        func yamlIssue(_ e: YamlError) -> ChecklistIssue {
            switch e {
            case let .scanner(_, problem, mark, _), let .parser(_, problem, mark, _), let .composer(_, problem, mark, _):
                return ChecklistIssue(file: file, line: mark.line, column: mark.column, message: "YAML syntax: \(problem)")
            case let .duplicatedKeysInMapping(duplicates, context):
                return ChecklistIssue(file: file, line: context.mark.line, column: context.mark.column,
                                      message: "duplicate key(s) \(duplicates.joined(separator: ", ")) in a mapping")
            default:
                return ChecklistIssue(file: file, line: 1, message: "YAML: \(e)")
            }
        }

        mutating func checkKeys(_ fields: Fields, allowed: [String], what: String) {
            for key in fields.map.keys {
                guard let k = key.string else { issue(key, "\(what): keys must be text"); continue }
                if !allowed.contains(k) {
                    let hint = Suggestions.didYouMean(k, in: allowed) ?? "allowed: \(allowed.joined(separator: ", "))"
                    issue(key, "\(what): unknown key '\(k)'", fix: hint)
                }
            }
        }

        mutating func text(_ node: Node?, _ what: String) -> String? {
            guard let node else { return nil }
            guard let s = node.scalar?.string else { issue(node, "\(what) must be text"); return nil }
            return s
        }

        mutating func texts(_ node: Node?, _ what: String) -> [(String, Int)] {
            guard let node else { return [] }
            if let s = node.scalar {
                return ChecklistLoader.isNull(node) ? [] : [(s.string, node.mark?.line ?? 0)]
            }
            guard let seq = node.sequence else { issue(node, "\(what) must be a list of text"); return [] }
            var out: [(String, Int)] = []
            for n in seq {
                if let s = n.scalar?.string { out.append((s, n.mark?.line ?? 0)) } else { issue(n, "\(what): entries must be text") }
            }
            return out
        }

        mutating func numeric(_ node: Node?, _ what: String) -> Double? {
            guard let node else { return nil }
            guard let v = ChecklistLoader.double(node), v.isFinite else { issue(node, "\(what) must be a finite number"); return nil }
            return v
        }

        mutating func checklist(_ rootMap: Node.Mapping, root: Node) -> Checklist? {
            let map = Fields(root, rootMap)
            checkKeys(map, allowed: ChecklistLoader.rootKeys, what: "checklist")
            let name = text(map["checklist"], "checklist")
            if name == nil, map["checklist"] == nil {
                issue(root, "missing `checklist:` (the checklist's short name)", fix: "add e.g. `checklist: clas12-rgx`")
            }
            var format = 1
            if let f = map["format"] {
                if let v = ChecklistLoader.int(f), v == 1 { format = v } else {
                    issue(f, "format \(f.scalar?.string ?? "?") is not supported (this calibctl reads format 1)",
                          fix: "upgrade calibctl or write `format: 1`")
                }
            }
            guard let stepsNode = map["steps"] else {
                issue(root, "missing `steps:`", fix: "add a list of steps (docs/checklists.md)")
                return nil
            }
            guard let seq = stepsNode.sequence else { issue(stepsNode, "`steps:` must be a list"); return nil }
            var steps: [ChecklistStep] = []
            steps.reserveCapacity(seq.count)
            for node in seq {
                if let s = step(node, earlier: steps) { steps.append(s) }
            }
            if steps.isEmpty && seq.isEmpty { issue(stepsNode, "`steps:` is empty") }
            return Checklist(name: name ?? "unnamed", title: text(map["title"], "title") ?? name ?? "unnamed",
                             description: text(map["description"], "description"), format: format,
                             final: text(map["final"], "final"), steps: steps, file: file)
        }

        mutating func step(_ node: Node, earlier: [ChecklistStep]) -> ChecklistStep? {
            guard let m = node.mapping else { issue(node, "each step must be a mapping with at least `id:`"); return nil }
            let map = Fields(node, m)
            let line = node.mark?.line ?? 0
            guard let id = text(map["id"], "id"), !id.isEmpty else {
                if map["id"] == nil { issue(node, "step without `id:`", fix: "give every step a unique id such as `dc-alignment`") }
                return nil
            }
            let what = "step '\(id)'"
            checkKeys(map, allowed: ChecklistLoader.stepKeys, what: what)
            if id.contains(where: { $0.isWhitespace }) || id.contains(",") {
                issue(map["id"], "\(what): ids may not contain spaces or commas", fix: "use dashes, e.g. 'dc-alignment'")
            }
            var prereqs: [String] = [], lines: [Int] = []
            for (p, l) in texts(map["prerequisites"], "\(what) prerequisites") {
                if p == ChecklistLoader.allAbove || p == "all the above" {
                    for e in earlier where !prereqs.contains(e.id) { prereqs.append(e.id); lines.append(l) }
                } else {
                    prereqs.append(p); lines.append(l)
                }
            }
            var number: Int?
            if let n = map["number"] {
                if let v = ChecklistLoader.int(n) { number = v } else { issue(n, "\(what): number must be an integer") }
            }
            var ifNecessary = false
            if let f = map["if_necessary"] {
                if let b = ChecklistLoader.bool(f) { ifNecessary = b } else { issue(f, "\(what): if_necessary must be true or false") }
            }
            var estimate = 1.0
            if let e = numeric(map["estimate_days"], "\(what) estimate_days") {
                if e >= 0 { estimate = e } else { issue(map["estimate_days"], "\(what): estimate_days must be >= 0") }
            }
            let validation = gates(map["validation"], what: what)
            let action = action(map["action"], what: what)
            if map["title"] == nil { issue(node, "\(what) has no `title:`") }
            if map["phase"] == nil { issue(node, "\(what) has no `phase:`") }
            return ChecklistStep(
                id: id, number: number, title: text(map["title"], "\(what) title") ?? id,
                phase: text(map["phase"], "\(what) phase") ?? "",
                owner: text(map["owner"], "\(what) owner") ?? text(map["contact"], "\(what) contact"),
                prerequisites: prereqs,
                conditions: texts(map["conditions"], "\(what) conditions").map(\.0),
                inputs: texts(map["inputs"], "\(what) inputs").map(\.0),
                outcomes: texts(map["outcomes"], "\(what) outcomes").map(\.0),
                validation: validation, documentation: text(map["documentation"], "\(what) documentation"),
                ifNecessary: ifNecessary, estimateDays: estimate, action: action, line: line,
                prerequisiteLines: lines, approvers: texts(map["approvers"], "\(what) approvers").map(\.0))
        }

        mutating func gates(_ node: Node?, what: String) -> [ValidationItem] {
            guard let node else { return [] }
            guard let seq = node.sequence else {
                issue(node, "\(what): validation must be a list of gates (name + metric + min/max) or checks (name + check)")
                return []
            }
            var out: [ValidationItem] = []
            for g in seq {
                if let s = g.scalar?.string {   // a bare string is a manual check
                    out.append(ValidationItem(name: s, check: s))
                    continue
                }
                guard let gm = g.mapping else { issue(g, "\(what): a validation entry must be a mapping or text"); continue }
                let m = Fields(g, gm)
                checkKeys(m, allowed: ChecklistLoader.gateKeys, what: "\(what) validation")
                let metric = text(m["metric"], "metric"), check = text(m["check"], "check")
                let lo = numeric(m["min"], "min"), hi = numeric(m["max"], "max")
                let name = text(m["name"], "name") ?? metric ?? check ?? "gate"
                if metric == nil && check == nil {
                    issue(g, "\(what): validation '\(name)' needs `metric:` (with min/max) or `check:` (free text)")
                }
                if metric != nil && lo == nil && hi == nil {
                    issue(g, "\(what): gate '\(name)' on \(metric!) has no threshold", fix: "add `min:` and/or `max:`")
                }
                if metric == nil && (lo != nil || hi != nil) {
                    issue(g, "\(what): validation '\(name)' has thresholds but no `metric:`")
                }
                if let lo, let hi, lo > hi { issue(g, "\(what): gate '\(name)' has min \(lo) > max \(hi)") }
                out.append(ValidationItem(name: name, metric: metric, min: lo, max: hi, check: check))
            }
            let names = out.map(\.name)
            for (i, n) in names.enumerated() where names[..<i].contains(n) {
                issue(seq[i], "\(what): validation name '\(n)' is used twice")
            }
            return out
        }

        mutating func action(_ node: Node?, what: String) -> StepAction? {
            guard let node else { return nil }
            guard let am = node.mapping else {
                issue(node, "\(what): action must be a mapping like {builtin: pixel-gain-fit, per: fed} or {command: \"...\", per: run}")
                return nil
            }
            let m = Fields(node, am)
            checkKeys(m, allowed: ChecklistLoader.actionKeys, what: "\(what) action")
            let builtin = text(m["builtin"], "builtin"), command = text(m["command"], "command")
            let kind: StepAction.Kind
            switch (builtin, command) {
            case let (b?, nil): kind = .builtin(b)
            case let (nil, c?):
                kind = .command(c)
                for p in StepAction.placeholders(in: c) where !StepAction.placeholders.contains(p) {
                    issue(m["command"], "\(what): unknown placeholder {\(p)} in the command template",
                          fix: Suggestions.didYouMean(p, in: StepAction.placeholders.sorted())
                            ?? "known: \(StepAction.placeholders.sorted().map { "{\($0)}" }.joined(separator: " "))")
                }
            case (_?, _?): issue(node, "\(what): action has both `builtin:` and `command:`; choose one"); return nil
            case (nil, nil): issue(node, "\(what): action needs `builtin:` or `command:`"); return nil
            }
            var per = StepAction.Granularity.campaign
            if let p = text(m["per"], "per") {
                if let g = StepAction.Granularity(rawValue: p) { per = g } else {
                    let all = StepAction.Granularity.allCases.map(\.rawValue)
                    issue(m["per"], "\(what): action per '\(p)' is not one of \(all.joined(separator: ", "))",
                          fix: Suggestions.didYouMean(p, in: all))
                }
            }
            var params: [String: String] = [:]
            if let w = m["with"] {
                if let wm = w.mapping {
                    for (k, v) in wm {
                        if let ks = k.string, let vs = v.scalar?.string { params[ks] = vs } else {
                            issue(k, "\(what): action `with:` entries must be key: value text")
                        }
                    }
                } else { issue(w, "\(what): action `with:` must be a mapping") }
            }
            return StepAction(kind: kind, per: per, parameters: params)
        }
    }
}
