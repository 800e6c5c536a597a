"""Batch jobs that run a trained model over a whole dataset on Apache Beam: re-transcription of a
MAESTRO-layout dataset (`w2m2w maestro retranscribe`). It sits above both `maestro` (the dataset,
Beam preprocessing) and `transcribe` (the model), which therefore do not import each other both ways."""
