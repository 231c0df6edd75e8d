@testable import CalibStore
import CalibCore
import CalibIO
import CalibTestSupport
import Foundation

/// A store in a fresh temporary directory with one detector, plus helpers.
final class StoreFixture {
    let tmp = TemporaryDirectory("calibstore")
    let store: ConstantsStore
    static let me = Identity(user: "alice", host: "testhost", commandLine: "swift test")

    init(identity: Identity = StoreFixture.me) throws {
        store = try ConstantsStore(directory: tmp.file("store"), identity: identity, create: true)
        try store.addDetector(DetectorSpec(name: "jf4m", kind: "jungfrau", aliases: ["CxiDs1.0:Jungfrau.0"], hardwareIndex: 170))
    }

    func reopen(as identity: Identity) throws -> ConstantsStore {
        try ConstantsStore(directory: store.directory, identity: identity)
    }
}

func peds(_ seed: UInt64, count: Int = 24, shape: [Int]? = nil) throws -> Payload {
    var r = SplitMix64(seed: seed)
    let v = (0..<count).map { _ in Float(r.nextGaussian() * 3 + 2700) }
    return try Payload(arrays: [PayloadArray(name: "pedestals", values: v, shape: shape ?? [count])])
}

func runs(_ s: String) -> RunRange { try! RunRange(parsing: s) }
