import CalibIO
import Dispatch

/// The streaming form of the content hash rule `calibctl-content-v1` (docs/formats-store.md). Element bytes may be
/// fed in chunks; with `background: true` they are hashed on a serial background queue, so reading the next chunk
/// overlaps hashing the previous one. Calls are applied in the order they are made.
final class ContentHasher: @unchecked Sendable {
    private var hasher = SHA256Hasher()
    private let queue: DispatchQueue?

    init(background: Bool = false) {
        queue = background ? DispatchQueue(label: "calibctl.content-hash") : nil
    }

    private func apply(_ body: @escaping @Sendable (ContentHasher) -> Void) {
        if let queue { queue.async { body(self) } } else { body(self) }
    }

    private func field(_ s: String) {
        hasher.update("\(s.utf8.count):")
        hasher.update(s)
    }

    func begin(datasets: Int) {
        apply { $0.field(Payload.hashRule); $0.field("datasets=\(datasets)") }
    }

    func dataset(name: String, dtype: DType, shape: [Int], byteCount: Int) {
        apply {
            $0.field(name); $0.field(dtype.rawValue); $0.field("rank=\(shape.count)")
            $0.field(shape.map(String.init).joined(separator: ",")); $0.hasher.update("\(byteCount):")
        }
    }

    /// Hashes `count` bytes at `base`, which must stay valid and unchanged until ``finish()`` returns.
    func bytes(_ base: UnsafeRawPointer, count: Int) {
        let p = UInt(bitPattern: base)
        apply { $0.hasher.update(UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: p), count: count)) }
    }

    /// Keeps `bytes` alive until the queued hashing of them has run.
    func keepAlive(_ bytes: [UInt8]) {
        apply { _ in _ = bytes.count }
    }

    func attributes(_ attributes: [String: AttributeValue]) {
        apply { h in
            let keys = attributes.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            h.field("attributes=\(keys.count)")
            for k in keys {
                h.field(k)
                switch attributes[k]! {
                case .string(let s): h.field("string"); h.field(s)
                case .int(let i): h.field("int"); h.field(String(i))
                case .double(let d): h.field("double"); h.field(String(d.bitPattern, radix: 16))
                case .ints(let a): h.field("ints"); h.field(a.map(String.init).joined(separator: ","))
                case .doubles(let a): h.field("doubles"); h.field(a.map { String($0.bitPattern, radix: 16) }.joined(separator: ","))
                }
            }
        }
    }

    /// Waits for queued work and returns the hex digest.
    func finish() -> String {
        if let queue { return queue.sync { hasher.finalizeHexAndReset() } }
        return hasher.finalizeHexAndReset()
    }
}
