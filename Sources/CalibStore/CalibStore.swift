import CalibCore
