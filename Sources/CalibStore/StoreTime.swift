import Foundation

/// Times in the store: integer microseconds since 1970-01-01 UTC (exact to compare, sort and round-trip), shown as
/// ISO 8601 UTC with microseconds.
public enum StoreTime {
    /// Now, in microseconds since the epoch.
    public static func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000
    }

    /// `2026-11-21T20:16:44.123456Z`. Written straight into the string's storage (one allocation): timelines and
    /// listings format two of these per entry, millions of times for a big tag.
    public static func format(_ us: Int64) -> String {
        var secs = time_t(us.floorDiv(1_000_000))
        let frac = Int(us - Int64(secs) * 1_000_000)
        var tmv = tm()
        gmtime_r(&secs, &tmv)
        return String(unsafeUninitializedCapacity: 27) { out in
            var i = 0
            func put(_ v: Int, _ width: Int) {
                var x = v
                for k in stride(from: i + width - 1, through: i, by: -1) { out[k] = UInt8(48 + x % 10); x /= 10 }
                i += width
            }
            func sep(_ c: UInt8) { out[i] = c; i += 1 }
            put(Int(tmv.tm_year) + 1900, 4); sep(45); put(Int(tmv.tm_mon) + 1, 2); sep(45)
            put(Int(tmv.tm_mday), 2); sep(84); put(Int(tmv.tm_hour), 2); sep(58)
            put(Int(tmv.tm_min), 2); sep(58); put(Int(tmv.tm_sec), 2); sep(46); put(frac, 6); sep(90)
            return i
        }
    }

    /// Parses `now`, `2026-11-21`, `2026-11-21T20:16:44Z`, `2026-11-21 20:16:44`, with optional fractional seconds
    /// and a `Z` or `+hh:mm` offset (no offset means UTC), or `@SECONDS` since the epoch.
    public static func parse(_ text: String) throws -> Int64 {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t.lowercased() == "now" { return now() }
        let fix = "write a time as 2026-11-21, 2026-11-21T20:16:44Z or 2026-11-21T20:16:44.5+01:00 (UTC if no offset)"
        if t.hasPrefix("@") {
            guard let s = Double(t.dropFirst()), s.isFinite, let us = Int64(exactly: (s * 1_000_000).rounded()),
                  abs(us) < 253_402_300_800_000_000 else {
                throw StoreError.usage("time '\(text)' is not a number of seconds since 1970 within years 0-9999", fix: fix)
            }
            return us
        }
        var s = Substring(t)
        func num(_ n: Int) -> Int? {
            guard s.count >= n, s.prefix(n).allSatisfy({ $0.isASCII && $0.isNumber }), let v = Int(s.prefix(n)) else { return nil }
            s = s.dropFirst(n)
            return v
        }
        func eat(_ c: Character) -> Bool { if s.first == c { s = s.dropFirst(); return true } else { return false } }
        guard let y = num(4), eat("-"), let mo = num(2), eat("-"), let d = num(2) else {
            throw StoreError.usage("time '\(text)' is not a date", fix: fix)
        }
        var h = 0, mi = 0, sec = 0, micro: Int64 = 0, offset = 0
        if eat("T") || eat(" ") {
            guard let hh = num(2), eat(":"), let mm = num(2) else { throw StoreError.usage("time '\(text)' has no hh:mm", fix: fix) }
            h = hh; mi = mm
            if eat(":") {
                guard let ss = num(2) else { throw StoreError.usage("time '\(text)' has bad seconds", fix: fix) }
                sec = ss
                if eat(".") {
                    let digits = s.prefix(while: { $0.isASCII && $0.isNumber })
                    s = s.dropFirst(digits.count)
                    let padded = (String(digits) + "000000").prefix(6)
                    micro = Int64(padded) ?? 0
                }
            }
            if eat("Z") || eat("z") {
            } else if let sign = s.first, sign == "+" || sign == "-" {
                s = s.dropFirst()
                guard let oh = num(2) else { throw StoreError.usage("time '\(text)' has a bad offset", fix: fix) }
                _ = eat(":")
                let om = num(2) ?? 0
                offset = (oh * 60 + om) * 60 * (sign == "-" ? -1 : 1)
            }
        }
        guard s.isEmpty, (1...12).contains(mo), h < 24, mi < 60, sec < 60, abs(offset) <= 14 * 3600 else {
            throw StoreError.usage("time '\(text)' is not a valid time", fix: fix)
        }
        // Strict: 2026-02-31 is refused, not read as 2026-03-03.
        let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1]
        guard (1...days).contains(d) else {
            throw StoreError.usage("time '\(text)' is not a valid date: \(String(format: "%04d-%02d", y, mo)) has \(days) days", fix: fix)
        }
        var tmv = tm()
        tmv.tm_year = Int32(y - 1900); tmv.tm_mon = Int32(mo - 1); tmv.tm_mday = Int32(d)
        tmv.tm_hour = Int32(h); tmv.tm_min = Int32(mi); tmv.tm_sec = Int32(sec)
        let epoch = Int64(timegm(&tmv)) - Int64(offset)
        return epoch * 1_000_000 + micro
    }
}

extension Int64 {
    func floorDiv(_ d: Int64) -> Int64 { self >= 0 ? self / d : -((-self + d - 1) / d) }
}
