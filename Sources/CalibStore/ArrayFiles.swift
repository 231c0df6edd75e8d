import CalibIO
import Foundation

/// NumPy `.npy` (format 1.0/2.0, little-endian, C order) and the LCLS text n-d array format, for one array.
public enum ArrayFiles {
    // MARK: .npy

    /// Encodes one array as `.npy` version 1.0.
    public static func npy(_ a: PayloadArray) -> Data {
        let shape = a.shape.count == 1 ? "(\(a.shape[0]),)" : "(" + a.shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(a.dtype.numpyDescr)', 'fortran_order': False, 'shape': \(shape), }"
        let total = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - total % 64) % 64) + "\n"
        var d = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let n = UInt16(header.utf8.count)
        d.append(contentsOf: [UInt8(n & 0xff), UInt8(n >> 8)])
        d.append(contentsOf: Array(header.utf8))
        d.append(contentsOf: a.bytes)
        return d
    }

    /// Decodes a `.npy` file; refuses Fortran order, big-endian and non-numeric dtypes with a message naming `source`.
    public static func readNPY(_ data: Data, name: String, source: String) throws -> PayloadArray {
        let b = [UInt8](data)
        guard b.count >= 10, b[0] == 0x93, Array(b[1..<6]) == Array("NUMPY".utf8) else {
            throw StoreError.bad("\(source) is not a .npy file (bad magic)", fix: "save it with numpy.save")
        }
        let major = b[6]
        let hlen: Int, start: Int
        if major == 1 { hlen = Int(b[8]) | Int(b[9]) << 8; start = 10 }
        else {
            guard b.count >= 12 else { throw StoreError.bad("\(source) is truncated") }
            hlen = Int(b[8]) | Int(b[9]) << 8 | Int(b[10]) << 16 | Int(b[11]) << 24; start = 12
        }
        guard b.count >= start + hlen else { throw StoreError.bad("\(source) is truncated inside its header") }
        let header = String(decoding: b[start..<(start + hlen)], as: UTF8.self)
        func value(_ key: String) -> String? {
            guard let r = header.range(of: "'\(key)':") else { return nil }
            return String(header[r.upperBound...]).trimmingCharacters(in: .whitespaces)
        }
        guard let descrText = value("descr"), let q1 = descrText.firstIndex(of: "'"),
              let q2 = descrText[descrText.index(after: q1)...].firstIndex(of: "'") else {
            throw StoreError.bad("\(source): .npy header has no descr")
        }
        let descr = String(descrText[descrText.index(after: q1)..<q2])
        if descr.hasPrefix(">") && !descr.hasSuffix("1") {
            throw StoreError.bad("\(source) is big-endian (\(descr))", fix: "convert it: a.astype(a.dtype.newbyteorder('<'))")
        }
        guard let dtype = DType(parsing: descr) else {
            throw StoreError.bad("\(source) has dtype \(descr), not a number type calibctl stores (float32/64, int8..64, uint8..64)")
        }
        if value("fortran_order")?.hasPrefix("True") == true {
            throw StoreError.bad("\(source) is in Fortran order", fix: "save numpy.ascontiguousarray(a)")
        }
        guard let st = value("shape"), let o = st.firstIndex(of: "("), let c = st.firstIndex(of: ")") else {
            throw StoreError.bad("\(source): .npy header has no shape")
        }
        let fields = st[st.index(after: o)..<c].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let shape = fields.compactMap { Int($0) }
        guard shape.count == fields.count, shape.allSatisfy({ $0 >= 0 }) else {
            throw StoreError.bad("\(source): .npy shape (\(fields.joined(separator: ", "))) is not a list of non-negative integers")
        }
        guard let need = PayloadArray.byteCount(shape: shape, dtype: dtype) else {
            throw StoreError.bad("\(source): .npy shape \(shape) of \(dtype) is too large to address (more than 2^63 bytes)", fix: "check the file; it is damaged or not a real array")
        }
        guard need > 0 else {
            throw StoreError.bad("\(source) holds an empty array (shape \(shape))", fix: "store constants with at least one element")
        }
        let body = Array(b[(start + hlen)...])
        guard body.count == need else {
            throw StoreError.bad("\(source) holds \(body.count) data bytes, shape \(shape) of \(dtype) needs \(need) (truncated?)")
        }
        return try PayloadArray(name: name, dtype: dtype, shape: shape, bytes: body)
    }

    // MARK: LCLS text n-d array

    /// Reads a text input file; refuses (exit 65) a file that is not UTF-8, naming the offset of the first bad byte.
    public static func readText(path: String) throws -> String {
        let data = try readFile(path: path)
        if let s = String(data: data, encoding: .utf8) { return s }
        var offset = 0
        var decoder = UTF8()
        var bytes = data.makeIterator()
        decode: while true {
            switch decoder.decode(&bytes) {
            case .scalarValue(let c): offset += UTF8.width(c)
            case .emptyInput, .error: break decode
            }
        }
        throw StoreError.bad("\(path) is not UTF-8 text (invalid byte near offset \(offset))",
                             fix: "an LCLS text array holds ASCII numbers and '#' comment lines; convert it (e.g. `iconv -f latin1 -t utf-8`) or give an .npy or .h5 file")
    }

    /// Reads an input file; a missing or unreadable file is a clear error (exit 65).
    public static func readFile(path: String) throws -> Data {
        guard let fh = FileHandle(forReadingAtPath: path) else {
            let code = errno
            throw StoreError.bad("input file \(path) cannot be read: \(String(cString: strerror(code)))",
                                 fix: "check the path and its permissions")
        }
        defer { try? fh.close() }
        do { return try fh.readToEnd() ?? Data() } catch {
            throw StoreError.bad("input file \(path) cannot be read: \(error.localizedDescription)", fix: "check the file")
        }
    }

    /// The LCLS text format: comment lines (`# DTYPE float32`, `# NDIM 3`, `# DIM:0 8`, ...) then the values, one
    /// row of the last dimension per line.
    public static func lclsText(_ a: PayloadArray, comments: [String] = []) -> String {
        var out = comments.map { "# \($0)\n" }.joined()
        out += "# DTYPE \(a.dtype.rawValue)\n# NDIM \(a.shape.count)\n"
        for (k, d) in a.shape.enumerated() { out += "# DIM:\(k) \(d)\n" }
        let values = a.doubles()
        let rowLen = a.shape.count <= 1 ? 1 : Swift.max(a.shape.last!, 1)
        var line: [String] = []
        line.reserveCapacity(rowLen)
        for v in values {
            if a.dtype.isFloatingPoint {
                line.append(a.dtype == .float32 ? "\(Float(v))" : "\(v)")
            } else {
                line.append(String(Int64(exactly: v) ?? Int64(v)))
            }
            if line.count == rowLen { out += line.joined(separator: " ") + "\n"; line.removeAll(keepingCapacity: true) }
        }
        if !line.isEmpty { out += line.joined(separator: " ") + "\n" }
        return out
    }

    /// Parses the LCLS text format. Without DTYPE/NDIM comments the shape is (lines, values per line) or (values,)
    /// and the dtype is `defaultDType`.
    public static func readLCLSText(_ text: String, name: String, defaultDType: DType, source: String) throws -> PayloadArray {
        var dtype: DType? = nil
        var ndim: Int? = nil
        var dims: [Int: Int] = [:]
        var values: [Substring] = []
        var lines = 0, perLine: Int? = nil, ragged = false
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            if line.hasPrefix("#") {
                let f = line.dropFirst().split(whereSeparator: { $0 == " " || $0 == "\t" })
                guard f.count >= 2 else { continue }
                let key = f[0].uppercased()
                if key == "DTYPE" {
                    guard let d = DType(parsing: String(f[1])) else {
                        throw StoreError.bad("\(source): DTYPE '\(f[1])' is not a number type calibctl stores")
                    }
                    dtype = d
                } else if key == "NDIM" {
                    guard let v = Int(f[1]), (0...32).contains(v) else { throw StoreError.bad("\(source): NDIM '\(f[1])' is not a rank from 0 to 32") }
                    ndim = v
                } else if key.hasPrefix("DIM:"), let k = Int(key.dropFirst(4)) {
                    guard let v = Int(f[1]), v >= 0 else { throw StoreError.bad("\(source): \(f[0]) '\(f[1])' is not a non-negative integer") }
                    dims[k] = v
                }
                continue
            }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "," })
            if let p = perLine, p != fields.count { ragged = true }
            perLine = perLine ?? fields.count
            values.append(contentsOf: fields.map { Substring($0) })
            lines += 1
        }
        let dt = dtype ?? defaultDType
        var shape: [Int]
        if let ndim {
            // psana writes DIM:0..N-1; some writers number dimensions from 1.
            let base = dims[0] != nil || ndim == 0 ? 0 : 1
            shape = try (0..<ndim).map { k in
                guard let d = dims[base + k] else { throw StoreError.bad("\(source): NDIM is \(ndim) but DIM:\(base + k) is missing") }
                return d
            }
        } else {
            guard !ragged else { throw StoreError.bad("\(source): lines hold different numbers of values and no NDIM/DIM comments give the shape") }
            shape = (perLine ?? 0) == 1 || lines == 1 ? [values.count] : [lines, perLine ?? 0]
        }
        guard let n = PayloadArray.byteCount(shape: shape, dtype: dt).map({ $0 / Swift.max(dt.size, 1) }) else {
            throw StoreError.bad("\(source): shape \(shape) of \(dt) is too large to address (more than 2^63 bytes)", fix: "check the DIM lines")
        }
        guard n > 0, !values.isEmpty else {
            throw StoreError.bad("\(source) holds no values" + (shape.isEmpty || values.isEmpty ? "" : " (shape \(shape))"),
                                 fix: "store constants with at least one element; is the file truncated?")
        }
        guard values.count == n else {
            throw StoreError.bad("\(source) holds \(values.count) values, but its shape \(shape) needs \(n) (truncated?)")
        }
        var bytes = [UInt8]()
        bytes.reserveCapacity(n * dt.size)
        func append<T>(_ v: T) { withUnsafeBytes(of: v) { bytes.append(contentsOf: $0) } }
        for (i, s) in values.enumerated() {
            let str = String(s)
            func bad() -> StoreError { StoreError.bad("\(source): value \(i + 1) '\(str)' is not a \(dt)") }
            switch dt {
            case .float32: guard let v = Float(str) else { throw bad() }; append(v)
            case .float64: guard let v = Double(str) else { throw bad() }; append(v)
            default:
                guard let d = Double(str), d == d.rounded() else { throw bad() }
                switch dt {
                case .int8: guard let v = Int8(exactly: d) else { throw bad() }; append(v)
                case .int16: guard let v = Int16(exactly: d) else { throw bad() }; append(v)
                case .int32: guard let v = Int32(exactly: d) else { throw bad() }; append(v)
                case .int64: guard let v = Int64(str) ?? Int64(exactly: d) else { throw bad() }; append(v)
                case .uint8: guard let v = UInt8(exactly: d) else { throw bad() }; append(v)
                case .uint16: guard let v = UInt16(exactly: d) else { throw bad() }; append(v)
                case .uint32: guard let v = UInt32(exactly: d) else { throw bad() }; append(v)
                case .uint64: guard let v = UInt64(str) ?? UInt64(exactly: d) else { throw bad() }; append(v)
                default: throw bad()
                }
            }
        }
        return try PayloadArray(name: name, dtype: dt, shape: shape, bytes: bytes)
    }
}
