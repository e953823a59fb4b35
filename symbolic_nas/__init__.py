"""symbolic_nas."""
