import Foundation

/// A source of new campaigns scanned at every tick before campaigns move on, besides the watched directories
/// (`calibctl campaign watch`): e.g. the pixel gain inbox of `HOME/pixelgain.json`. Registered in
/// `CampaignTriggers.standard`.
public protocol CampaignTrigger {
    var name: String { get }
    /// Creates the campaigns of whatever arrived; one line per new campaign or problem. A thrown error is reported
    /// as the trigger's error; the tick goes on.
    func scan(engine: WorkflowEngine, deadline: Date?) throws -> [String]
}
