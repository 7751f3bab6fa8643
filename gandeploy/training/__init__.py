"""Training: the trainer contract, GAN families, losses, checkpoints, recipes, DDP."""
