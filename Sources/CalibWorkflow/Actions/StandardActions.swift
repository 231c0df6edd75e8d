import CalibCore
import CalibRunner

extension ActionRegistry {
    /// Every action this calibctl runs: the command action and the builtins named in `StepAction.builtinNames`
    /// (a test keeps the two lists equal).
    public static var standard: ActionRegistry {
        ActionRegistry([
            CommandAction(),
            DarkProcessAction(), DarkConstantsAction(), ComparePreviousAction(), StoreDeployAction(),
            LCLSExportAction(),
            PixelGainFitAction(), PixelGainMergeAction(), PixelGainValidateAction(), PixelGainPayloadAction(),
        ])
    }
}

/// The job kinds a worker (`calibctl job run`) needs for the workflow's job actions.
public enum WorkflowJobKinds {
    public static var all: [any JobKind.Type] { [DarkProcessJob.self, PixelGainFitJob.self] }
}

/// Sources of new campaigns scanned at every tick (besides `calibctl campaign watch`).
public enum CampaignTriggers {
    public static var standard: [any CampaignTrigger] { [PixelGainInbox()] }
}
