#if canImport(Glibc)
import Glibc
#endif

/// Page-cache hints for readers that stream files once.
public enum PageCache {
    /// Tells the kernel the file's cached pages will not be needed again (`posix_fadvise(DONTNEED)`): a run streaming
    /// more data than memory then drops what it has read instead of making the kernel reclaim it page by page.
    public static func dontNeed(_ path: String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)
        close(fd)
    }
}
