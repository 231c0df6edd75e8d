import Foundation

/// calibctl's version, recorded in every provenance record and payload.
public enum CalibctlVersion {
    public static let string = "0.1.0"

    /// This executable's GNU build ID (the linker's hash of the linked program, `readelf -n`), its first 16 hex
    /// digits; nil when the program carries none. Two builds of the same version from different sources differ here.
    public static let build: String? = ownBuildID().map { String($0.prefix(16)) }

    /// The version with the build as SemVer build metadata (`0.1.0+8842c0b4ae97f654`): what job specs record, so a
    /// worker can tell another build of the same version apart (`WorkerVersionCheck`).
    public static let full: String = build.map { "\(string)+\($0)" } ?? string

    /// The NT_GNU_BUILD_ID note of the running executable, read from `/proc/self/exe`: the ELF header, the program
    /// headers, then the PT_NOTE segments (a few hundred bytes in all, from the page cache).
    static func ownBuildID() -> String? {
        guard let h = FileHandle(forReadingAtPath: "/proc/self/exe") else { return nil }
        defer { try? h.close() }
        func read(_ offset: UInt64, _ count: Int) -> [UInt8]? {
            guard count > 0, count < 1 << 20, (try? h.seek(toOffset: offset)) != nil,
                  let d = try? h.read(upToCount: count), d.count == count else { return nil }
            return [UInt8](d)
        }
        func u16(_ b: [UInt8], _ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 }
        func u32(_ b: [UInt8], _ o: Int) -> Int { u16(b, o) | u16(b, o + 2) << 16 }
        func u64(_ b: [UInt8], _ o: Int) -> UInt64 { UInt64(u32(b, o)) | UInt64(u32(b, o + 4)) << 32 }
        // 64-bit little-endian ELF only (every platform calibctl builds for).
        guard let e = read(0, 64), e[0] == 0x7f, e[1] == 0x45, e[2] == 0x4c, e[3] == 0x46, e[4] == 2, e[5] == 1 else { return nil }
        let phoff = u64(e, 32), phentsize = u16(e, 54), phnum = u16(e, 56)
        guard phentsize >= 56, phnum > 0, let table = read(phoff, phentsize * phnum) else { return nil }
        for i in 0..<phnum {
            let ph = i * phentsize
            guard u32(table, ph) == 4 else { continue }   // PT_NOTE
            guard let notes = read(u64(table, ph + 8), Int(u64(table, ph + 32))) else { continue }
            var p = 0
            while p + 12 <= notes.count {
                let nameSize = u32(notes, p), descSize = u32(notes, p + 4), type = u32(notes, p + 8)
                let name = p + 12, desc = name + ((nameSize + 3) & ~3)
                guard desc + descSize <= notes.count else { break }
                if type == 3, nameSize == 4, notes[name..<(name + 3)].elementsEqual("GNU".utf8) {   // NT_GNU_BUILD_ID
                    return notes[desc..<(desc + descSize)].map { String(format: "%02x", $0) }.joined()
                }
                p = desc + ((descSize + 3) & ~3)
            }
        }
        return nil
    }
}
