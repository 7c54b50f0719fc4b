"""Every recipe kind the Trainer can run, imported once so each registers itself with `core.engine.recipe`.

The Trainer trains any model family: classifiers (`core.trainer.classify`), autoencoders
(`core.latent.recipe`), the composer's two models (`core.composer.recipes`) and the captioner
(`core.captions.recipe`). A run folder's spec.json names its kind; this import makes every kind readable.
"""
from core.captions.recipe import CaptionerRecipe
from core.composer.recipes import CRNNRecipe, PairRecipe
from core.latent.recipe import AutoencoderRecipe
from core.trainer.classify import TrainSpec

KINDS = {"classifier": TrainSpec, "autoencoder": AutoencoderRecipe, "pair": PairRecipe, "crnn": CRNNRecipe,
         "captioner": CaptionerRecipe}
