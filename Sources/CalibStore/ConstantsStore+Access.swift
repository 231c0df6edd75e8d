import CalibIO

/// What a rule lets a user do. Each level includes the ones before it.
public enum StorePermission: String, Sendable, Codable, CaseIterable, Comparable {
    /// Put constants and create tags of the matching detector/type.
    case write
    /// Also change tag states (validate, publish, retire).
    case publish
    /// Also add detectors and types, create global tags, import, gc, and grant/revoke.
    case admin

    var rank: Int { switch self { case .write: 1; case .publish: 2; case .admin: 3 } }
    public static func < (a: StorePermission, b: StorePermission) -> Bool { a.rank < b.rank }
}

/// One access rule: `user` may do `permission` on `detector`/`type` (`*` matches any).
public struct AccessRule: Sendable, Codable, Equatable {
    public var id: Int64
    public var user: String
    public var detector: String
    public var type: String
    public var permission: StorePermission
    public var grantedBy: String
    public var grantedAt: String

    public var text: String { "#\(id) \(user) \(permission.rawValue) \(detector)/\(type)" }

    func matches(user u: String, detector d: String, type t: String) -> Bool {
        (user == "*" || user == u) && (detector == "*" || detector == d) && (type == "*" || type == t)
    }
}

/// Access control. Reads are open to everyone. Writes follow the rules in the `access_rules` table:
/// - the store's creator is always an admin;
/// - while the store holds no rule at all, it is open: every user may write and publish (admin verbs stay with the
///   creator);
/// - once a rule exists, a user needs a rule matching (user, detector, type) at the needed level, else the write is
///   refused (exit 77) with a message naming the rules that do exist for that detector/type.
extension ConstantsStore {
    /// Every rule, in id order.
    public func accessRules() throws -> [AccessRule] {
        try db.query("SELECT * FROM access_rules ORDER BY id").map { r in
            AccessRule(id: r.int("id")!, user: r.text("user")!, detector: r.text("detector")!, type: r.text("type")!,
                       permission: StorePermission(rawValue: r.text("permission")!) ?? .write,
                       grantedBy: r.text("granted_by")!, grantedAt: StoreTime.format(r.int("granted_at_us")!))
        }
    }

    /// Grants `permission` on detector/type (`*` for any) to `user`. Only admins may grant.
    @discardableResult
    public func grant(user: String, permission: StorePermission, detector: String = "*", type: String = "*") throws -> AccessRule {
        if user != "*" { try StoreNames.check(user, what: "user name") }
        if detector != "*" { _ = try self.detector(detector) }
        if type != "*" { _ = try self.type(type) }
        let detName = detector == "*" ? "*" : try self.detector(detector).name
        try requirePermission(.admin, detector: detName, type: type, action: "grant \(permission.rawValue) to \(user)")
        _ = try write {
            try db.run("INSERT OR IGNORE INTO access_rules(user, detector, type, permission, granted_by, granted_at_us) VALUES(?,?,?,?,?,?)",
                       user, detName, type, permission.rawValue, identity.user, try transactionTime())
        }
        return try accessRules().first { $0.user == user && $0.detector == detName && $0.type == type && $0.permission == permission }!
    }

    /// Removes matching rules (returns how many). Only admins may revoke. The detector may be given by name or
    /// alias, as for ``grant(user:permission:detector:type:)``.
    /// - Throws: ``StoreError`` (exit 65) when no rule matches, naming the rules the user has.
    @discardableResult
    public func revoke(user: String, permission: StorePermission? = nil, detector: String = "*", type: String = "*") throws -> Int {
        let detName = detector == "*" ? "*" : try self.detector(detector).name
        if type != "*" { _ = try self.type(type) }
        try requirePermission(.admin, detector: detName, type: type, action: "revoke rules of \(user)")
        let n = try write {
            if let permission {
                return try db.run("DELETE FROM access_rules WHERE user=? AND detector=? AND type=? AND permission=?",
                                  user, detName, type, permission.rawValue)
            }
            return try db.run("DELETE FROM access_rules WHERE user=? AND detector=? AND type=?", user, detName, type)
        }
        if n == 0 {
            let have = try accessRules().filter { $0.user == user }
            throw StoreError.bad("no rule of \(user) matches \(permission?.rawValue ?? "any level") on \(detName)/\(type); nothing was revoked",
                                 fix: have.isEmpty ? "\(user) has no rule; `calibctl store list rules` shows every rule"
                                    : "\(user)'s rules: " + have.map(\.text).joined(separator: "; ") + " (revoke names the detector/type of the rule exactly)")
        }
        return n
    }

    /// The highest permission the acting user holds on detector/type, or nil.
    public func permission(detector: String, type: String, user: String? = nil) throws -> StorePermission? {
        let u = user ?? identity.user
        if u == creator { return .admin }
        let rules = try accessRules()
        if rules.isEmpty { return .publish }
        return rules.filter { $0.matches(user: u, detector: detector, type: type) }.map(\.permission).max()
    }

    /// Throws ``StoreError`` (`permission`, exit 77) unless the acting user holds `needed` on detector/type.
    func requirePermission(_ needed: StorePermission, detector: String, type: String, action: String) throws {
        try requireWritable()
        if let have = try permission(detector: detector, type: type), have >= needed { return }
        let rules = try accessRules()
        let relevant = rules.filter { ($0.detector == "*" || $0.detector == detector || detector == "*")
            && ($0.type == "*" || $0.type == type || type == "*") }
        let listing = relevant.isEmpty ? "no rule covers \(detector)/\(type) (admin: \(creator))"
            : "rules for \(detector)/\(type): " + relevant.map(\.text).joined(separator: "; ")
        let why = rules.isEmpty ? "only the store's admin (\(creator)) may \(action.split(separator: " ").first ?? "do this")"
            : "user \(identity.user) needs \(needed.rawValue) on \(detector)/\(type); \(listing)"
        throw StoreError(.permission, "\(identity.user) may not \(action): \(why)",
                         fix: "ask an admin (\(creator)) to run `calibctl store grant \(StoreNames.shellQuoted(identity.user)) \(needed.rawValue) --detector \(StoreNames.shellQuoted(detector)) --type \(StoreNames.shellQuoted(type))`")
    }
}
