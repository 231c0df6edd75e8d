/// "Did you mean" suggestions by edit distance.
public enum Suggestions {
    /// Levenshtein distance between two strings (by Unicode scalars).
    public static func editDistance(_ a: String, _ b: String) -> Int {
        let x = Array(a.unicodeScalars), y = Array(b.unicodeScalars)
        if x.isEmpty { return y.count }
        if y.isEmpty { return x.count }
        var prev = Array(0...y.count), cur = Array(repeating: 0, count: y.count + 1)
        for i in 1...x.count {
            cur[0] = i
            for j in 1...y.count {
                cur[j] = Swift.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
            }
            swap(&prev, &cur)
        }
        return prev[y.count]
    }

    /// The closest candidate within a distance of max(2, a third of the word), or one containing the word.
    public static func closest(to word: String, in candidates: some Collection<String>) -> String? {
        var best: (String, Int)?
        let limit = Swift.max(2, word.count / 3)
        for c in candidates {
            let d = editDistance(word, c)
            if d <= limit, best == nil || d < best!.1 { best = (c, d) }
        }
        if let best { return best.0 }
        let lower = word.lowercased()
        return candidates.first { $0.lowercased().contains(lower) || (lower.count > 3 && lower.contains($0.lowercased())) }
    }

    /// "; did you mean 'x'?" or "".
    public static func didYouMean(_ word: String, in candidates: some Collection<String>) -> String? {
        closest(to: word, in: candidates).map { "did you mean '\($0)'?" }
    }
}
