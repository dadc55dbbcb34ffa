"""The operator's tools: the command line, status, display and the simulator. Never on FC's hot path."""
