import ArgumentParser
import CalibCore

/// `--home` and `--store`, shared by every command that touches state.
struct WorkspaceOptions: ParsableArguments {
    @Option(help: ArgumentHelp("calibctl's state directory (campaigns, jobs); default $CALIBCTL_HOME, else ~/.calibctl.",
                               valueName: "dir"))
    var home: String?

    @Option(help: ArgumentHelp("The constants store directory; default $CALIBCTL_STORE, else HOME/store.",
                               valueName: "dir"))
    var store: String?

    var workspace: Workspace { Workspace.resolve(home: home, store: store) }
}
