"""The Draw page's core: MNIST-style preprocessing of drawings and photos."""
