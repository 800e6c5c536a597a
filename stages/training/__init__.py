"""Training runs that resume, and shipping a run's model as a checkpoint with its record and
model card."""
