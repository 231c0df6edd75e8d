import CalibIO

/// The declared content of a calibration type: the datasets a payload of that type must hold, their dtypes and a
/// rank or shape rule. A payload that breaks the schema is refused with a message naming the dataset and why.
///
/// Text form of one dataset rule (CLI `--dataset`): `NAME:DTYPES:SHAPE[?]`, e.g. `pedestals:float32,float64:rank1-6`,
/// `geometry:float64:*x13`, `pedestal:float32:like(gain)`, `status:uint8,uint16:any?` (trailing `?`: optional).
/// DTYPES may be `float` (float32,float64), `int` (every integer type) or `any`.
public struct TypeSchema: Sendable, Codable, Equatable {
    public struct DatasetRule: Sendable, Codable, Equatable {
        public var name: String
        public var dtypes: [DType]
        /// Allowed ranks (inclusive), when no exact shape is given.
        public var minRank: Int
        public var maxRank: Int
        /// An exact shape; -1 matches any length in that dimension.
        public var shape: [Int]?
        /// The shape must equal that of this other dataset.
        public var sameShapeAs: String?
        public var optional: Bool

        public init(name: String, dtypes: [DType], minRank: Int = 0, maxRank: Int = 32, shape: [Int]? = nil,
                    sameShapeAs: String? = nil, optional: Bool = false) {
            self.name = name; self.dtypes = dtypes; self.minRank = minRank; self.maxRank = maxRank
            self.shape = shape; self.sameShapeAs = sameShapeAs; self.optional = optional
        }

        /// Parses `NAME:DTYPES:SHAPE[?]`.
        public init(parsing text: String) throws {
            let fix = "write a dataset rule as NAME:DTYPES:SHAPE, e.g. pedestals:float32,float64:rank1-6 or geometry:float64:*x13 or status:uint8:any?"
            var t = text
            let opt = t.hasSuffix("?")
            if opt { t.removeLast() }
            let parts = t.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 3 else { throw StoreError.usage("dataset rule '\(text)' does not have 3 fields", fix: fix) }
            try StoreNames.check(parts[0], what: "dataset name")
            var dts: [DType] = []
            for d in parts[1].split(separator: ",") {
                switch d {
                case "any": dts += DType.allCases
                case "float": dts += [.float32, .float64]
                case "int": dts += DType.allCases.filter { !$0.isFloatingPoint }
                default:
                    guard let v = DType(rawValue: String(d)) else {
                        throw StoreError.usage("dataset rule '\(text)': unknown dtype '\(d)'",
                                               fix: "use float32, float64, int8..int64, uint8..uint64, float, int or any")
                    }
                    dts.append(v)
                }
            }
            guard !dts.isEmpty else { throw StoreError.usage("dataset rule '\(text)' lists no dtype", fix: fix) }
            var unique: [DType] = []
            for d in dts where !unique.contains(d) { unique.append(d) }
            // Declared order is kept: the first dtype is the default for inputs that do not say (LCLS text).
            var rule = DatasetRule(name: parts[0], dtypes: unique, optional: opt)
            let s = parts[2]
            if s == "any" {
            } else if s.hasPrefix("rank") {
                let r = s.dropFirst(4).split(separator: "-", omittingEmptySubsequences: false)
                guard let lo = r.first.flatMap({ Int($0) }) else { throw StoreError.usage("dataset rule '\(text)': bad rank", fix: fix) }
                rule.minRank = lo
                rule.maxRank = r.count > 1 ? (Int(r[1]) ?? 32) : lo
            } else if s.hasPrefix("like(") && s.hasSuffix(")") {
                rule.sameShapeAs = String(s.dropFirst(5).dropLast())
            } else if s == "scalar" {
                rule.shape = []
            } else {
                let dims = s.split(separator: "x").map { $0 == "*" ? -1 : (Int($0) ?? -2) }
                guard !dims.contains(-2) else { throw StoreError.usage("dataset rule '\(text)': bad shape '\(s)'", fix: fix) }
                rule.shape = dims
            }
            self = rule
        }

        public var text: String {
            let d = Set(dtypes) == Set(DType.allCases) ? "any" : dtypes.map(\.rawValue).joined(separator: ",")
            var s: String
            if let shape { s = shape.isEmpty ? "scalar" : shape.map { $0 < 0 ? "*" : String($0) }.joined(separator: "x") }
            else if let sameShapeAs { s = "like(\(sameShapeAs))" }
            else if minRank == 0 && maxRank >= 32 { s = "any" }
            else { s = minRank == maxRank ? "rank\(minRank)" : "rank\(minRank)-\(maxRank)" }
            return "\(name):\(d):\(s)" + (optional ? "?" : "")
        }
    }

    public var datasets: [DatasetRule]
    /// Whether datasets the schema does not name are accepted.
    public var allowExtra: Bool

    public init(datasets: [DatasetRule], allowExtra: Bool = false) {
        self.datasets = datasets
        self.allowExtra = allowExtra
    }

    /// The first required dataset: the one an LCLS text file or a `.npy` maps onto.
    public var primaryDataset: String? { datasets.first { !$0.optional }?.name ?? datasets.first?.name }

    /// Checks `payload` against the schema of type `typeName`; the error names the dataset and the rule it breaks.
    public func validate(_ payload: Payload, typeName: String) throws {
        let fix = "`calibctl store list types --json` shows the schema of \(typeName)"
        for rule in datasets {
            guard let a = payload[rule.name] else {
                if rule.optional { continue }
                throw StoreError.bad("payload for type \(typeName) lacks dataset '\(rule.name)' (\(rule.text))"
                                     + " ; it holds \(payload.arrays.map(\.name).joined(separator: ", "))", fix: fix)
            }
            guard rule.dtypes.contains(a.dtype) else {
                throw StoreError.bad("dataset '\(a.name)' of type \(typeName) is \(a.dtype), the schema allows \(rule.dtypes.map(\.rawValue).joined(separator: ", "))", fix: fix)
            }
            if let shape = rule.shape {
                let ok = shape.count == a.shape.count && zip(shape, a.shape).allSatisfy { $0 < 0 || $0 == $1 }
                guard ok else {
                    throw StoreError.bad("dataset '\(a.name)' of type \(typeName) has shape \(a.shapeText), the schema requires \(rule.text.split(separator: ":").last ?? "")", fix: fix)
                }
            } else if let other = rule.sameShapeAs {
                guard let b = payload[other], b.shape == a.shape else {
                    throw StoreError.bad("dataset '\(a.name)' of type \(typeName) has shape \(a.shapeText), the schema requires the shape of '\(other)' (\(payload[other]?.shapeText ?? "absent"))", fix: fix)
                }
            } else {
                guard (rule.minRank...Swift.max(rule.minRank, rule.maxRank)).contains(a.shape.count) else {
                    throw StoreError.bad("dataset '\(a.name)' of type \(typeName) has rank \(a.shape.count) (\(a.shapeText)), the schema allows rank \(rule.minRank)-\(rule.maxRank)", fix: fix)
                }
            }
        }
        if !allowExtra {
            let known = Set(datasets.map(\.name))
            if let extra = payload.arrays.first(where: { !known.contains($0.name) }) {
                throw StoreError.bad("dataset '\(extra.name)' is not part of type \(typeName) (it declares \(datasets.map(\.name).joined(separator: ", ")))", fix: "rename the dataset or drop it; " + fix)
            }
        }
    }

    /// Types every store knows from creation.
    public static let builtin: [(name: String, schema: TypeSchema, comment: String)] = {
        func r(_ s: String) -> DatasetRule { try! DatasetRule(parsing: s) }
        return [
            ("pedestals", TypeSchema(datasets: [r("pedestals:float:rank1-6")]), "per-pixel dark level (ADU)"),
            ("pixel_rms", TypeSchema(datasets: [r("pixel_rms:float:rank1-6")]), "per-pixel dark noise (ADU)"),
            ("pixel_status", TypeSchema(datasets: [r("pixel_status:uint16,int:rank1-6")]), "per-pixel status bits, 0 = good"),
            ("pixel_mask", TypeSchema(datasets: [r("pixel_mask:uint8,int:rank1-6")]), "per-pixel mask, 1 = use"),
            ("pixel_gain", TypeSchema(datasets: [r("pixel_gain:float:rank1-6")]), "per-pixel relative gain"),
            ("common_mode", TypeSchema(datasets: [r("common_mode:any:rank1")]), "common-mode algorithm parameters"),
            ("geometry", TypeSchema(datasets: [r("geometry:float64:*x13")]),
             "geometry table: one row per (parent, child) placement, 13 numbers"),
            ("gain_offline", TypeSchema(datasets: [r("offline:uint8:rank2"), r("detid:int64:rank1")]),
             "CMS pixel offline gain payload: one 8-bit blob per module (per-pixel pedestal, gain per column of 80 rows; 254 noisy, 255 dead), modules x bytes"),
            ("gain_hlt", TypeSchema(datasets: [r("hlt:uint8:rank2"), r("detid:int64:rank1")]),
             "CMS pixel HLT gain payload: one 8-bit blob per module (pedestal and gain per column of 80 rows), modules x bytes"),
            ("vcal", TypeSchema(datasets: [r("slope:float:rank0-2"), r("offset:float:like(slope)"), r("detid:int64:rank1?")]),
             "VCal to electrons conversion per module: electrons = slope * vcal * vcal_high_to_low + offset"),
            ("cabling", TypeSchema(datasets: [r("fed:int32:rank1"), r("link:int32:like(fed)"), r("roc:int32:like(fed)"),
                                              r("module:int32:like(fed)"), r("row_offset:int32:like(fed)"),
                                              r("col_offset:int32:like(fed)"), r("layer1:uint8:like(fed)"),
                                              r("fed_id:int32:rank1"), r("fed_modules:int32:like(fed_id)")]),
             "CMS pixel cabling: per (fed, link, roc) the module index within the FED and the first row and column of the ROC in it; per FED (fed_id) its module count; attributes module_rows, module_cols, roc_rows, roc_cols, version"),
        ]
    }()
}
