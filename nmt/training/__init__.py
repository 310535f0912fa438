"""Training: the loop, optimizer and schedule, progress and stops, validation, the run log."""
