"""Training: losses over masked block entries, compiled steps, schedules, checkpoints, the loop."""
