"""Where the transcriber lived before `transcribe.transcriber`; kept so that older imports work."""

from transcribe.transcriber import (  # noqa: F401
    DEFAULT_CHECKPOINT,
    SILENCE_PEAK,
    Transcriber,
    decode_probabilities,
    float16_rounded,
    load_rescorer,
    load_transcriber_model,
)
