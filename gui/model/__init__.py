"""Model mode: several torch.optim optimizers train copies of one torch.nn model on data."""
