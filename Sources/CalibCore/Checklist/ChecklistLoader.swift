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

    static let rootKeys = ["checklist", "title", "description", "format", "final", "steps", "units", "params"]
    static let stepKeys = ["id", "number", "title", "phase", "owner", "contact", "prerequisites", "conditions",
                           "inputs", "outcomes", "validation", "documentation", "if_necessary", "estimate_days",
                           "action", "notes", "approvers", "success", "repeat"]
    static let gateKeys = ["name", "metric", "min", "max", "check"]
    static let actionKeys = ["builtin", "command", "per", "with", "scheduler", "memory", "time"]

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

    /// "4000" (MB), "4G", "512M", "2GB" -> megabytes (> 0).
    public static func megabytes(_ text: String) -> Int? {
        let t = text.trimmingCharacters(in: .whitespaces).uppercased().replacingOccurrences(of: "B", with: "")
        let (num, mult): (Substring, Int) = t.hasSuffix("G") ? (t.dropLast(), 1024) : t.hasSuffix("M") ? (t.dropLast(), 1)
            : t.hasSuffix("T") ? (t.dropLast(), 1024 * 1024) : (Substring(t), 1)
        guard let v = Double(num), v > 0, v.isFinite, v * Double(mult) < 1e9 else { return nil }
        return max(1, Int((v * Double(mult)).rounded(.up)))
    }

    /// "3600" (seconds), "90m", "2h", "1d", "30s" -> seconds (> 0).
    public static func seconds(_ text: String) -> Int? {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(String, Double)] = [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)]
        var mult = 1.0, num = Substring(t)
        for (u, f) in units where t.hasSuffix(u) { mult = f; num = t.dropLast(); break }
        guard let v = Double(num), v > 0, v.isFinite, v * mult < 1e9 else { return nil }
        return max(1, Int((v * mult).rounded(.up)))
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
            var units: [String: [String]] = [:]
            if let u = map["units"] {
                if let um = u.mapping {
                    for (k, v) in um {
                        guard let axis = k.string, !axis.isEmpty else { issue(k, "units: axis names must be text"); continue }
                        if StepAction.builtinAxes.contains(axis) && axis == "run" {
                            issue(k, "units: axis 'run' is the campaign's runs and cannot be declared", fix: "remove it; use --runs")
                        }
                        if axis == "campaign" || axis.contains(where: { $0.isWhitespace || $0 == "," || $0 == "=" || $0 == "/" }) {
                            issue(k, "units: '\(axis)' is not a valid axis name", fix: "use a word such as telescope")
                        }
                        let values = texts(v, "units \(axis)").map(\.0)
                        for val in values where val.isEmpty || val.contains(where: { $0 == "," || $0 == "=" || $0 == "/" || $0.isWhitespace }) {
                            issue(v, "units \(axis): value '\(val)' may not be empty or contain spaces, ',', '=' or '/'")
                        }
                        if Set(values).count != values.count { issue(v, "units \(axis): values are repeated") }
                        units[axis] = values
                    }
                } else { issue(u, "`units:` must be a mapping of axis: [values], e.g. telescope: [LST1, LST2]") }
            }
            var params: [String: String] = [:]
            if let pn = map["params"] {
                if let pm = pn.mapping {
                    for (k, v) in pm {
                        if let ks = k.string, let vs = v.scalar?.string { params[ks] = vs } else {
                            issue(k, "`params:` entries must be name: default text")
                        }
                    }
                } else { issue(pn, "`params:` must be a mapping of name: default") }
            }
            return Checklist(name: name ?? "unnamed", title: text(map["title"], "title") ?? name ?? "unnamed",
                             description: text(map["description"], "description"), format: format,
                             final: text(map["final"], "final"), steps: steps, file: file, units: units, params: params)
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
            var success: SuccessRule?
            if let sn = map["success"] {
                if let sm = sn.mapping {
                    let f = Fields(sn, sm)
                    checkKeys(f, allowed: ["max_failed", "min_fraction"], what: "\(what) success")
                    var rule = SuccessRule()
                    if let mf = f["max_failed"] {
                        if let v = ChecklistLoader.int(mf), v >= 0 { rule.maxFailed = v } else {
                            issue(mf, "\(what): success max_failed must be an integer >= 0")
                        }
                    }
                    if let mf = f["min_fraction"] {
                        if let v = ChecklistLoader.double(mf), v >= 0, v <= 1 { rule.minFraction = v } else {
                            issue(mf, "\(what): success min_fraction must be a number in 0...1", fix: "e.g. min_fraction: 0.95")
                        }
                    }
                    if rule.maxFailed == nil && rule.minFraction == nil {
                        issue(sn, "\(what): success needs max_failed or min_fraction")
                    }
                    success = rule
                } else { issue(sn, "\(what): success must be a mapping like {max_failed: 2} or {min_fraction: 0.95}") }
                if action == nil { issue(sn, "\(what): success applies to an action's units, but the step has no action") }
            }
            var repeatRule: RepeatRule?
            if let rn = map["repeat"] {
                if let rm = rn.mapping {
                    let f = Fields(rn, rm)
                    checkKeys(f, allowed: ["max_iterations"], what: "\(what) repeat")
                    if let mi = f["max_iterations"], let v = ChecklistLoader.int(mi), v >= 1, v <= 1000 {
                        repeatRule = RepeatRule(maxIterations: v)
                    } else {
                        issue(rn, "\(what): repeat needs max_iterations, an integer in 1...1000", fix: "e.g. repeat: {max_iterations: 5}")
                    }
                } else { issue(rn, "\(what): repeat must be a mapping like {max_iterations: 5}") }
                if validation.allSatisfy({ $0.metric == nil }) {
                    issue(rn, "\(what): repeat runs the step again while a gate fails, but the step has no gates",
                          fix: "add a validation gate with metric: and min:/max:, or remove repeat:")
                }
                if action == nil { issue(rn, "\(what): repeat needs an action to run again") }
            }
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
                prerequisiteLines: lines, approvers: texts(map["approvers"], "\(what) approvers").map(\.0),
                success: success, repeatRule: repeatRule)
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
            case let (b?, nil):
                kind = .builtin(b)
                if !StepAction.builtinNames.contains(b) {
                    issue(m["builtin"], "\(what): unknown builtin action '\(b)'",
                          fix: Suggestions.didYouMean(b, in: StepAction.builtinNames)
                            ?? "known: \(StepAction.builtinNames.joined(separator: ", ")); or use command: \"...\"")
                }
            case let (nil, c?): kind = .command(c)
            case (_?, _?): issue(node, "\(what): action has both `builtin:` and `command:`; choose one"); return nil
            case (nil, nil): issue(node, "\(what): action needs `builtin:` or `command:`"); return nil
            }
            var axes: [String] = []
            if let p = m["per"] {
                let list = texts(p, "\(what) action per").map(\.0)
                if list == ["campaign"] { axes = [] } else {
                    for a in list {
                        if a == "campaign" { issue(p, "\(what): `per: campaign` cannot be combined with other axes"); continue }
                        if a == "shard" {
                            issue(p, "\(what): `per: shard` is not an axis", fix: "name the axis, e.g. per: run or per: fed")
                            continue
                        }
                        if axes.contains(a) { issue(p, "\(what): axis '\(a)' is named twice in per:"); continue }
                        axes.append(a)
                    }
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
            let scheduler = text(m["scheduler"], "\(what) action scheduler")
            if let s = scheduler, !["local", "slurm", "htcondor"].contains(s) {
                issue(m["scheduler"], "\(what): unknown scheduler '\(s)'",
                      fix: Suggestions.didYouMean(s, in: ["local", "slurm", "htcondor"]) ?? "use local, slurm or htcondor")
            }
            var memory: Int?
            if let mn = m["memory"] {
                if let v = mn.scalar?.string, let mb = ChecklistLoader.megabytes(v) { memory = mb } else {
                    issue(mn, "\(what): action memory must be megabytes (4000) or a size like 4G or 512M")
                }
            }
            var time: Int?
            if let tn = m["time"] {
                if let v = tn.scalar?.string, let sec = ChecklistLoader.seconds(v) { time = sec } else {
                    issue(tn, "\(what): action time must be seconds (3600) or a duration like 90m or 2h")
                }
            }
            return StepAction(kind: kind, axes: axes, parameters: params, scheduler: scheduler, memoryMB: memory,
                              timeLimitSeconds: time, line: node.mark?.line ?? 0)
        }
    }
}
