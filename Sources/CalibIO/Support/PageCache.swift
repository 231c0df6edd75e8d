import Foundation

/// Page-cache hints for streaming inputs larger than memory.
public enum PageCache {
    /// Tells the kernel the file's cached pages will not be needed again (`posix_fadvise(DONTNEED)`): a run streaming
    /// more data than memory then drops what it has read instead of making the kernel reclaim it page by page.
    public static func dontNeed(_ path: String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)
        close(fd)
    }

    /// Bytes the kernel reports as available for new allocations without swapping (`MemAvailable` in /proc/meminfo),
    /// nil if unknown.
    public static func availableMemory() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let fields = line.split(separator: " ")
            if fields.count >= 2, let kb = Int(fields[1]) { return kb * 1024 }
        }
        return nil
    }

    /// Whether a run reading `bytes` of input once should drop each input after use: only when the inputs cannot all
    /// stay cached (more than half the available memory). Smaller runs keep them: a second pass or the next tool then
    /// reads from memory, and dropping them only makes the next reader go to disk.
    public static func shouldDrop(inputBytes bytes: Int) -> Bool {
        guard let available = availableMemory() else { return true }
        return bytes > available / 2
    }
}
