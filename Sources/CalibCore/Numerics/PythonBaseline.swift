import Foundation

/// The numpy baselines the benchmarks run side by side: what an ordinary user writes, fully vectorised over pixels.
public enum PythonBaseline {
    /// Closed-form weighted least squares over all pixels at once (float32), with the same plateau and 0.8 x plateau
    /// selection (without the stop rule). Prints {"seconds": best, "median_gain": ...}.
    public static let gainScript = """
    import h5py, numpy as np, time, json, sys
    f = h5py.File(sys.argv[1], 'r'); repeats = int(sys.argv[2])
    n = f['n'][()]; s = f['sum'][()]; q = f['sumsq'][()]; x = f['x'][()].astype(np.float32)
    def fit():
        with np.errstate(all='ignore'):
            y = s / n
            v = np.maximum(q / n - y * y, np.float32(1.0 / 12))
            w = np.where(n > 1, n / v, np.float32(0))
            P = y[:, -4:].mean(axis=1, keepdims=True)
            w = w * (y <= np.float32(0.8) * P)
            S = w.sum(1); xm = (w * x).sum(1) / S; ym = (w * y).sum(1) / S
            dx = x[None, :] - xm[:, None]; dy = y - ym[:, None]
            p1 = (w * dx * dy).sum(1) / (w * dx * dx).sum(1)
            r = dy - p1[:, None] * dx
            chi2 = (w * r * r).sum(1)
            return 1 / p1, ym - p1 * xm, chi2
    best = 1e30
    for _ in range(repeats):
        t0 = time.perf_counter(); g, p, c = fit(); best = min(best, time.perf_counter() - t0)
    ok = np.isfinite(g) & (g > 0) & (g < 1250)
    print(json.dumps({"seconds": best, "median_gain": float(np.median(g[ok]))}))
    """

    /// mean(0) and std(0) of the masked data of the first K frames (float32). Prints {"seconds": best}.
    public static let darkScript = """
    import h5py, numpy as np, time, json, sys
    f = h5py.File(sys.argv[1], 'r'); k = int(sys.argv[2]); repeats = int(sys.argv[3])
    d = f['frames'][:k]
    best = 1e30
    for _ in range(repeats):
        t0 = time.perf_counter()
        a = (d & 0x3fff).astype(np.float32)
        m = a.mean(0); s = a.std(0)
        best = min(best, time.perf_counter() - t0)
    print(json.dumps({"seconds": best, "mean_pedestal": float(m.mean())}))
    """

    /// Runs `python -c script arguments...` and parses the last stdout line as a JSON object of numbers.
    public static func run(python: String, script: String, arguments: [String]) throws -> [String: Double] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [python, "-c", script] + arguments
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0,
              let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last,
              let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw NumericsError.badParameter("numpy baseline (\(python))",
                                             "failed: \(String(decoding: errData, as: UTF8.self).suffix(400))",
                                             fix: "install numpy and h5py for \(python), or pass --no-numpy")
        }
        return obj.compactMapValues { ($0 as? NSNumber)?.doubleValue }
    }
}
