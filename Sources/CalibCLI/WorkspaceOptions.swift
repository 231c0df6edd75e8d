import ArgumentParser
import CalibCore

/// `--home` and `--store`, shared by every command that touches state.
struct WorkspaceOptions: ParsableArguments {
    @Option(help: ArgumentHelp("calibctl's state directory (campaigns, jobs).", valueName: "dir",
                               discussion: "Default: $CALIBCTL_HOME, else ~/.calibctl."))
    var home: String?

    @Option(help: ArgumentHelp("The constants store directory.", valueName: "dir",
                               discussion: "Default: $CALIBCTL_STORE, else HOME/store."))
    var store: String?

    var workspace: Workspace { Workspace.resolve(home: home, store: store) }
}
