import CalibCLI
// Imported here for the release build (-static-stdlib, Package.swift): this file's object then carries the link
// entries of the static Foundation (CoreFoundation, _FoundationICU, ...), which the linker needs.
import Foundation

CalibctlMain.run()
