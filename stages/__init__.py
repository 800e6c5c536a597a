"""What every stage shares, by role: the stage contract and configuration here (contract,
settings, options, config, checkpoints, cli, quiet, compiled); the audio and MIDI vocabulary in
`stages.io`; training runs and shipping in `stages.training`. Each part imports only those
before it: the top level neither io nor training, io not training."""
