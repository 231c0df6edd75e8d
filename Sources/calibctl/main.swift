import CalibCLI

CalibctlMain.run()
