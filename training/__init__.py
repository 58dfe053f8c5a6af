"""Training: weather synthesizer, losses, trainer, NLCL, export."""
