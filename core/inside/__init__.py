"""Inside the network: feature maps, filters and attributions (Grad-CAM, HiResCAM, saliency, occlusion)."""
