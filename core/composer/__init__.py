"""The Multi-MNIST composer's core: the two-digit multi-task CNN and the CRNN digit-string reader (CTC)."""
