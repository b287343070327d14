"""The metrics plugin's hook implementations (work in progress)."""
