"""The composers' token vocabulary as plain numbers (390 tokens), so that a model can be built
and trained where note-seq is not installed (compose/tokens.py checks them against note-seq's
performance encoding): 0 = padding, 1 = end of piece, then 128 note-ons, 128 note-offs, 100 time
shifts of 10 ms up to 1 s, and 32 velocity bins."""

PAD, END = 0, 1
SPECIAL_TOKENS = 2
NOTE_ON = SPECIAL_TOKENS  # + pitch
NOTE_OFF = NOTE_ON + 128  # + pitch
TIME_SHIFT = NOTE_OFF + 128  # + steps - 1
VELOCITY = TIME_SHIFT + 100  # + bin - 1
VOCAB_SIZE = VELOCITY + 32
PIANO_RANGE = (21, 108)  # MIDI pitches of the 88 keys: augmentation drops notes outside them

# Conditioning tokens, after the performance events (a model trained with them has a vocabulary of
# CONDITIONED_VOCAB_SIZE; older ones keep VOCAB_SIZE and load as they are). A training crop starts
# with at most one composer token and one note-density token, each left out at random (label
# dropout), so a model also learns to continue music with neither; they are never predicted.
COMPOSERS = ("Bach", "Balakirev", "Beethoven", "Brahms", "Chopin", "Debussy", "Glinka", "Haydn", "Liszt", "Mozart",
             "Prokofiev", "Rachmaninoff", "Ravel", "Schubert", "Schumann", "Scriabin")  # ASAP's labels
COMPOSER = VOCAB_SIZE  # + index in COMPOSERS
# Note-ons per second of a crop's music: bucket edges at the quintiles of ASAP's 512-token training crops.
DENSITY_EDGES = (8.0, 11.5, 14.5, 18.5)
DENSITY = COMPOSER + len(COMPOSERS)  # + bucket
CONDITIONED_VOCAB_SIZE = DENSITY + len(DENSITY_EDGES) + 1
