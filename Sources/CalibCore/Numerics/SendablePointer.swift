/// A raw pointer shared with `DispatchQueue.concurrentPerform` workers. Each worker writes a disjoint range, which is
/// what makes the unchecked conformance sound.
@usableFromInline
struct SendablePointer<T>: @unchecked Sendable {
    @usableFromInline let base: UnsafeMutablePointer<T>
    @inlinable init(_ base: UnsafeMutablePointer<T>) { self.base = base }
    @inlinable init(_ base: UnsafePointer<T>) { self.base = UnsafeMutablePointer(mutating: base) }
}
