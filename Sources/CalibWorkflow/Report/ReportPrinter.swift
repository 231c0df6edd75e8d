import CalibIO
import Foundation

/// Turns a report into a PDF with headless Chromium's print-to-PDF (no LaTeX): `CALIBCTL_CHROMIUM`, else the first
/// of chromium, chromium-browser, google-chrome on PATH.
public enum ReportPrinter {
    public static func chromium(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        if let c = environment["CALIBCTL_CHROMIUM"], !c.isEmpty { return FileManager.default.isExecutableFile(atPath: c) ? c : nil }
        for dir in (environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            for name in ["chromium", "chromium-browser", "google-chrome"] {
                let p = "\(dir)/\(name)"
                if FileManager.default.isExecutableFile(atPath: p) { return p }
            }
        }
        return nil
    }

    /// Prints `html` (a file) to `pdf` (written atomically). Throws `ReportError.noBrowser` when Chromium is missing.
    public static func printPDF(html: String, to pdf: String, timeout: Double = 120) throws {
        guard let browser = chromium() else { throw ReportError.noBrowser(pdf: pdf) }
        let tmp = pdf + ".tmp-\(getpid()).pdf"
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let profile = NSTemporaryDirectory() + "calibctl-chromium-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: profile) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: browser)
        p.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                       "--user-data-dir=\(profile)", "--no-pdf-header-footer", "--print-to-pdf-no-header",
                       "--virtual-time-budget=5000", "--print-to-pdf=\(tmp)", URL(fileURLWithPath: html).absoluteString]
        let log = Pipe()
        p.standardOutput = FileHandle.nullDevice
        p.standardError = log
        try p.run()
        let done = DispatchSemaphore(value: 0)
        let errData = LockedData()
        DispatchQueue.global().async { errData.set(log.fileHandleForReading.readDataToEndOfFile()); done.signal() }
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        if p.isRunning { p.terminate(); p.waitUntilExit(); throw ReportError.printFailed(pdf: pdf, detail: "\(browser) did not finish within \(Int(timeout)) s") }
        p.waitUntilExit()
        _ = done.wait(timeout: .now() + 5)
        let size = (try? FileManager.default.attributesOfItem(atPath: tmp)[.size] as? Int) ?? 0
        guard p.terminationStatus == 0, size > 0 else {
            let tail = String(decoding: errData.get().suffix(600), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw ReportError.printFailed(pdf: pdf, detail: "\(browser) exited \(p.terminationStatus)\(tail.isEmpty ? "" : ": " + tail)")
        }
        try? FileManager.default.removeItem(atPath: pdf)
        try FileManager.default.moveItem(atPath: tmp, toPath: pdf)
    }
}

extension ReportPrinter {
    /// Whether a workflow step prints its report to PDF: the parameter `report_pdf` (`with:` or the campaign's) is
    /// `true`/`auto` (default: when Chromium is installed) or `false`.
    public static func wanted(_ value: String?) -> Bool {
        !["false", "no", "0", "off"].contains((value ?? "auto").lowercased())
    }

    /// For workflow steps: prints `html` to `pdf` when Chromium is installed and never throws (a step must not fail
    /// because a browser is missing or broken). Returns the PDF's path, or a note saying why there is none.
    public static func printIfAvailable(html: String, to pdf: String, timeout: Double = 90,
                                        environment: [String: String] = ProcessInfo.processInfo.environment) -> (pdf: String?, note: String) {
        guard chromium(environment: environment) != nil else {
            return (nil, "no PDF: headless Chromium is not installed (scripts/bootstrap.sh --with-browser, or CALIBCTL_CHROMIUM); the HTML report is complete")
        }
        do {
            try printPDF(html: html, to: pdf, timeout: timeout)
            return (pdf, "PDF \(pdf)")
        } catch let e as DiagnosableError {
            return (nil, "no PDF: \(e.message)")
        } catch {
            return (nil, "no PDF: \(error)")
        }
    }
}

final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func set(_ d: Data) { lock.lock(); data = d; lock.unlock() }
    func get() -> Data { lock.lock(); defer { lock.unlock() }; return data }
}

/// Errors of the report machinery.
public enum ReportError: DiagnosableError {
    case noBrowser(pdf: String)
    case printFailed(pdf: String, detail: String)
    case archiveFailed(path: String, detail: String)
    case noSuchModule(detID: String, run: Int, known: String)

    public var exitStatus: ExitStatus {
        switch self {
        case .noBrowser: .unavailable
        case .printFailed, .archiveFailed: .internalError
        case .noSuchModule: .usage
        }
    }

    public var message: String {
        switch self {
        case .noBrowser(let p): "no PDF \(p): headless Chromium (chromium, chromium-browser or google-chrome) is not installed"
        case .printFailed(let p, let d): "the PDF \(p) could not be printed: \(d)"
        case .archiveFailed(let p, let d): "the archive \(p) could not be written: \(d)"
        case .noSuchModule(let d, let r, _): "module \(d) is not in run \(r)"
        }
    }

    public var fix: String? {
        switch self {
        case .noBrowser: "install it (scripts/bootstrap.sh --with-browser) or set CALIBCTL_CHROMIUM to its path; the HTML report is complete without it"
        case .printFailed: "open the HTML report and print it from a browser, or re-run with CALIBCTL_CHROMIUM pointing to a working Chromium"
        case .archiveFailed: "check the directory is writable and has space, then run the command again"
        case .noSuchModule(_, _, let k): "give a detid of the run (decimal or 0x hex), e.g. \(k)"
        }
    }
}
