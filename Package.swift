// swift-tools-version:6.0
// calibctl: calibration workflow orchestrator for detector physics.
// Layering (dependencies point down only, see docs/architecture.md):
//   calibctl (executable, 3 lines) -> CalibCLI (commands) -> CalibWorkflow (the engine that moves campaigns)
//     -> CalibStore, CalibRunner -> CalibCore -> CalibIO -> CHDF5, CSQLite, COpenSSL
import PackageDescription

/// The numeric kernels are compiled with AVX2/FMA enabled (x86-64-v3; every current farm node has it) and with -O even in
/// debug builds, because debug SIMD code runs ~1000x slower and makes `swift test` crawl (docs/benchmarks.md).
let numericFlags: [SwiftSetting] = [
    .unsafeFlags(["-Xcc", "-march=x86-64-v3"]),
    .unsafeFlags(["-O"], .when(configuration: .debug)),
]

let package = Package(
    name: "calibctl",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "calibctl", targets: ["calibctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.0.0"),
    ],
    targets: [
        // C libraries: module map + shim header, nothing else.
        .systemLibrary(name: "CHDF5", path: "Sources/CHDF5", pkgConfig: "hdf5",
                       providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite", pkgConfig: "sqlite3",
                       providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL", pkgConfig: "libcrypto",
                       providers: [.apt(["libssl-dev"])]),
        // Software prefetch for the numeric kernels (one inline function; Swift has no prefetch intrinsic).
        .target(name: "CPrefetch", path: "Sources/CPrefetch"),
        // Safe owning wrappers over the C libraries; the only code that imports them.
        .target(name: "CalibIO", dependencies: ["CHDF5", "CSQLite", "COpenSSL"]),
        .target(name: "CalibCore", dependencies: ["CalibIO", "CPrefetch", .product(name: "Yams", package: "Yams")],
                swiftSettings: numericFlags),
        // CalibCore's kernels again (Shared/ links to their sources), compiled for x86-64-v4 (AVX-512) and installed
        // at start-up on CPUs that have it (docs/numerics.md, "Instruction sets").
        .target(name: "CalibKernelsAVX512", dependencies: ["CalibCore", "CPrefetch"],
                swiftSettings: [.unsafeFlags(["-Xcc", "-march=x86-64-v4"]), .unsafeFlags(["-O"], .when(configuration: .debug)),
                                .define("CALIBCTL_AVX512")]),
        .target(name: "CalibStore", dependencies: ["CalibCore", "CalibIO"]),
        .target(name: "CalibRunner", dependencies: ["CalibCore", "CalibIO"]),
        // The workflow engine: turns any campaign's ready steps into job sets or in-process actions, collects
        // metrics and effort, applies quorum, repeat and gates, publishes to the store (docs/workflow.md).
        .target(name: "CalibWorkflow", dependencies: ["CalibCore", "CalibStore", "CalibRunner", "CalibIO"]),
        // The read-only HTTP service over a store (`calibctl serve`, docs/serve.md) and its client (`get --server`).
        .target(name: "CalibServe", dependencies: [
            "CalibStore", "CalibCore",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        .target(name: "CalibCLI", dependencies: [
            "CalibCore", "CalibKernelsAVX512", "CalibStore", "CalibRunner", "CalibIO", "CalibWorkflow", "CalibServe",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // The release build is the worker-node binary: the Swift standard library, Foundation and Dispatch are linked
        // in statically, so one file runs on a node of the same OS without a Swift toolchain; HDF5, SQLite, libcrypto
        // and glibc still come from the OS (docs/runner.md, "Worker nodes"). Debug builds and tests link dynamically.
        // main.swift is compiled with the flag too, so that its object names the static Foundation's own libraries
        // (CoreFoundation, _FoundationICU, ...) for the linker; the other targets are compiled as usual.
        .executableTarget(name: "calibctl", dependencies: ["CalibCLI"],
                          swiftSettings: [.unsafeFlags(["-static-stdlib"], .when(configuration: .release))],
                          // lld: the default linker (gold) prints glibc's link-time note on the static Foundation's
                          // use of mktemp(3) as a warning; lld does not (and links faster).
                          linkerSettings: [.unsafeFlags(["-static-stdlib", "-use-ld=lld"], .when(configuration: .release))]),

        .target(name: "CalibTestSupport", dependencies: ["CalibIO"], path: "Tests/CalibTestSupport"),
        .testTarget(name: "CalibIOTests", dependencies: ["CalibIO", "CalibTestSupport"]),
        .testTarget(name: "CalibCoreTests", dependencies: ["CalibCore", "CalibKernelsAVX512", "CalibTestSupport"], swiftSettings: numericFlags),
        .testTarget(name: "CalibStoreTests", dependencies: ["CalibStore", "CalibTestSupport"]),
        .testTarget(name: "CalibServeTests", dependencies: ["CalibServe", "CalibStore", "CalibTestSupport"]),
        .testTarget(name: "CalibRunnerTests", dependencies: ["CalibRunner", "CalibTestSupport"]),
        .testTarget(name: "CalibWorkflowTests", dependencies: ["CalibWorkflow", "CalibTestSupport"]),
        .testTarget(name: "CalibctlTests", dependencies: ["CalibCLI", "CalibServe", "CalibTestSupport"]),
    ]
)
