"""Adversarial fine-tuning of the decoder against the multi-scale conditional discriminator."""
