/// Rules for the names of stored objects. Names never become file paths unchecked: a name holding a path separator,
/// `..`, a control character or a leading dash is refused, so no name can escape the store or a bundle directory.
public enum StoreNames {
    static let plain = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.+:")

    /// Checks a detector, tag, global-tag, dataset, attribute or user name.
    /// - Parameter what: how the object is called in the message ("detector name", "tag", ...).
    public static func check(_ name: String, what: String) throws {
        if name.isEmpty { throw StoreError.usage("the \(what) is empty", fix: "give a non-empty \(what)") }
        if name.count > 200 { throw StoreError.usage("the \(what) '\(name.prefix(40))...' is longer than 200 characters") }
        if name.contains("/") || name.contains("\\") {
            throw StoreError.usage("the \(what) '\(name)' contains a path separator",
                                   fix: "use letters, digits and _ - . + : only")
        }
        if name == "." || name.contains("..") {
            throw StoreError.usage("the \(what) '\(name)' contains '..'", fix: "use letters, digits and _ - . + : only")
        }
        if name.hasPrefix("-") {
            throw StoreError.usage("the \(what) '\(name)' starts with '-'", fix: "start it with a letter or digit")
        }
        if let bad = name.first(where: { !plain.contains($0) }) {
            throw StoreError.usage("the \(what) '\(name)' contains the character '\(bad)'",
                                   fix: "use letters, digits and _ - . + : only")
        }
    }

    /// Checks a calibration type name: a plain name (`pedestals`) or a CCDB-style absolute path
    /// (`/calibration/ftof/attenuation`) whose components are plain names.
    public static func checkType(_ name: String) throws {
        if name.hasPrefix("/") {
            let parts = name.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
            if parts.isEmpty || parts.contains(where: \.isEmpty) {
                throw StoreError.usage("the calibration type '\(name)' has an empty path component",
                                       fix: "write it as /a/b/c with no '//' and no trailing '/'")
            }
            for p in parts { try check(String(p), what: "calibration type component") }
        } else {
            try check(name, what: "calibration type")
        }
    }

    /// `name` as one shell word: unchanged when it is a plain name, else in single quotes (`'*'`), so a printed
    /// command can be pasted into a shell as it stands.
    public static func shellQuoted(_ name: String) -> String {
        if !name.isEmpty && name.allSatisfy({ plain.contains($0) || $0 == "/" }) && !name.hasPrefix("-") { return name }
        return "'" + name.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
