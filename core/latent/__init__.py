"""The Latent-space page's core: autoencoders and VAEs, their task, metrics and latent-space maths."""
