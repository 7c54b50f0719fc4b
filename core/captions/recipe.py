"""The captioner recipe: Show-Attend-Tell on composed scenes of real images, or on a Flickr8k folder.

    python -m core train-captioner --epochs 10 --n-train 20000 --out checkpoints/scenes_captioner
    python -m core train-captioner --flickr8k /path/to/Flickr8k --out runs/flickr8k_captioner

Scenes are composed afresh every epoch from the training images of MNIST, Fashion-MNIST and CIFAR-10
(one random reference caption each); the test metrics (BLEU-1..4, exact match) come from fresh scenes of
the test images, seen and held-out class pairs apart, with BLEU-4 on seen scenes as the headline. A
Flickr8k folder is split by image (seeded); its vocabulary is built from the training captions. After
every epoch, BLEU-4 on a few validation images is reported for the live chart.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np

from core.captions.captioning import (MAX_TOKENS, MEAN, STD, Vocabulary, bleu, caption_all, evaluate_scenes,
                                      exact_match, grammar_vocabulary, scene_makers)
from core.captions.task import CaptionTask
from core.engine import ComposedLoader, Event, RunControl, TensorLoader, TrainConfig
from core.engine.checkpoint import CheckpointError, DatasetInfo, ModelCard, spec_of
from core.engine.recipe import Prepared, Recipe, register_presets, register_recipe
from core.engine.settings import SHARE, WIDTHS, check_memory
from core.errors import SettingsError
from core.models import build_model, count_parameters, evaluating
from core.models.registry import TRAINING_BUDGET
from core.viz import image_grid


@register_recipe
@dataclass
class CaptionerRecipe(Recipe):
    kind: ClassVar[str] = "captioner"
    verb: ClassVar[str] = "train-captioner"
    task: ClassVar[str] = "captioning"
    title: ClassVar[str] = "Captions: CNN + attention LSTM"
    pages: ClassVar[str] = "Caption generator"
    opens: ClassVar[tuple] = (("pages/captions.py", "caption_model", "Caption scenes with it"),)
    headlines: ClassVar[list] = [(("greedy", "seen", "bleu4"), "BLEU-4 (greedy, seen scenes)", True),
                                 (("greedy", "test", "bleu4"), "BLEU-4 (greedy, test images)", True)]
    sections: ClassVar[dict] = {"vocabulary": "strings",  # the words, in the model's output order
                                "held_out_pairs": list}  # class pairs never shown together in training
    live: ClassVar[tuple] = ("accuracy", "next-word accuracy", True)
    limits: ClassVar[dict] = {**TrainConfig.limits, "n_train": (1, 10_000_000), "eval_n": (1, 1_000_000),
                              "hidden": (0, 4096), "embed": (0, 4096), "attention": (0, 4096), "channels": WIDTHS,
                              "min_count": (1, 1_000_000), "test_share": SHARE}
    hidden: ClassVar[tuple] = ("model", "dataset", "data_dir")
    legacy: ClassVar[dict] = {"python -m core.captioning train ": "python -m core train-captioner "}
    model: str = "captioner"  # small CNN -> 8x8 feature grid -> LSTM with soft attention
    dataset: str = "scenes"  # scenes, or set flickr8k to a folder
    flickr8k: str = ""  # a Flickr8k-layout folder (Images/ + captions.txt) instead of the scenes
    epochs: int = 12  # passes, each over freshly composed scenes (or the Flickr8k training images)
    n_train: int = 20_000  # scenes composed per epoch
    lr: float = 2e-3  # peak learning rate (AdamW, one-cycle)
    batch_size: int = 64  # images per step
    channels: tuple = ()  # encoder conv widths; () = the model's default (32, 64, 128, 128)
    hidden: int = 0  # LSTM units; 0 = the model's default (256)
    embed: int = 0  # word embedding size; 0 = the model's default (64)
    attention: int = 0  # attention layer size; 0 = the model's default (128)
    test_share: float = 0.1  # Flickr8k: share of the images kept for testing
    min_count: int = 3  # Flickr8k: words seen fewer times in training captions become <unk>
    eval_n: int = 1000  # fresh test scenes per split for the card's metrics (beam search: up to 300)
    seed: int = 0  # weights, scenes, batch order, the Flickr8k split
    data_dir: str = ""  # "" = $CNN_STUDIO_DATA or the user cache

    def check(self) -> None:
        """The memory of one epoch's composed scenes, before any work."""
        check_memory((self.n_train + 1000) * 64 * 64 * 3 * 2, f"composing {self.n_train:,} scenes of 64x64 each epoch",
                     TRAINING_BUDGET, "Compose fewer scenes per epoch (n_train).")

    def train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, optimizer="adamw",
                           weight_decay=1e-4, schedule="onecycle", seed=self.seed, grad_clip=5.0, keep_best=False,
                           channels_last=False)

    @classmethod
    def evaluate_checkpoint(cls, model, card, data_dir, n=0, tta=False) -> tuple[dict, bool]:
        from core.captions.captioning import SPECIALS, Vocabulary, evaluate_scenes, scene_makers

        if tta:
            raise SettingsError("--tta is for classifiers of photos; a captioner has nothing to average.")
        _, test_maker = scene_makers(data_dir)
        held = {tuple(p) for p in card.section("held_out_pairs") or []}
        vocabulary = Vocabulary(card.section("vocabulary")[len(SPECIALS):])
        return {"greedy": evaluate_scenes(model, vocabulary, test_maker, held, n=n or 1000)}, True

    @classmethod
    def check_card(cls, card: ModelCard, where: str) -> None:
        words = card.section("vocabulary")
        if not words:
            raise CheckpointError(f"{where}: field 'vocabulary' is missing or empty; a captioner needs its words.")
        size = card.model.kwargs.get("vocab_size")
        if isinstance(size, int) and size != len(words):
            raise CheckpointError(f"{where}: field 'vocabulary' has {len(words)} words but the model was built for "
                                  f"vocab_size={size}.")

    def prepare(self, emit: Callable[[Event], None], control: RunControl) -> Prepared:
        if self.flickr8k:
            return self._flickr8k()
        from core.data.scenes import held_out_pairs

        train_maker, test_maker = scene_makers(self.data_dir or None)
        held, vocab = held_out_pairs(), grammar_vocabulary()

        def make(n: int, s: int):
            scenes = train_maker.make(n, seed=s, held_out=held)
            rng = np.random.default_rng(s)
            return scenes.images, vocab.pad([c[rng.integers(len(c))] for c in scenes.captions], MAX_TOKENS)

        model = self._model(vocab)
        card = ModelCard(task=self.task, model=spec_of(model), params=count_parameters(model),
                         sections={"vocabulary": vocab.words, "held_out_pairs": sorted(held)},
                         dataset=DatasetInfo(name="scenes", sources=["mnist", "fashion_mnist", "cifar10"], channels=3,
                                             image_size=64, mean=list(MEAN), std=list(STD)))
        val = make(1000, 10_000 + self.seed)
        shown = test_maker.make(100, seed=99, held_out=held)  # the live BLEU's images (test images, fixed)

        def evaluate(m) -> dict:
            return {"greedy": evaluate_scenes(m, vocab, test_maker, held, n=self.eval_n),
                    "beam5": evaluate_scenes(m, vocab, test_maker, held, n=min(self.eval_n, 300), beam=5)}

        return Prepared(model, CaptionTask(MEAN, STD), ComposedLoader(make, self.n_train, self.batch_size, self.seed),
                        TensorLoader(*val, batch_size=250, shuffle=False), self.train_config(), card, evaluate,
                        self._monitor(vocab, shown.images, shown.captions))

    def _model(self, vocab: Vocabulary):
        options = {k: v for k, v in (("channels", self.channels), ("hidden", self.hidden), ("embed", self.embed),
                                     ("attention", self.attention)) if v}
        return build_model("captioner", in_channels=3, image_size=64, vocab_size=len(vocab), seed=self.seed, **options)

    def _monitor(self, vocab: Vocabulary, images, references):
        def monitor(m):
            """BLEU-4 (greedy) on 100 held test images after each epoch, and the first image's caption."""
            with evaluating(m):
                hyps = [vocab.decode(d.tokens) for d in caption_all(m, images)]
            return ({"bleu4": bleu(references, hyps)["bleu4"], "exact_match": exact_match(references, hyps)},
                    image_grid(images[:4].numpy(), cols=4), "; ".join(f"{i + 1}: {h}" for i, h in enumerate(hyps[:4])))
        return monitor

    def _flickr8k(self) -> Prepared:
        from core.captions.flickr8k import load_flickr8k

        images, captions, problems = load_flickr8k(self.flickr8k, log=lambda *_: None)
        order = np.random.default_rng(self.seed).permutation(len(images))
        n_test = max(1, int(round(self.test_share * len(images)))) if len(images) > 1 else 0
        test, train = order[:n_test], order[n_test:]
        vocab = Vocabulary.build([c for i in train for c in captions[i]], min_count=self.min_count)

        def make(n: int, s: int):
            rng = np.random.default_rng(s)
            pick = rng.permutation(train)[:n]
            return images[pick], vocab.pad([captions[i][rng.integers(len(captions[i]))] for i in pick], MAX_TOKENS)

        model = self._model(vocab)
        shown = test if len(test) else train[:1]
        refs = [captions[i] for i in shown]
        card = ModelCard(task=self.task, model=spec_of(model), params=count_parameters(model),
                         sections={"vocabulary": vocab.words, "held_out_pairs": []},
                         dataset=DatasetInfo(name=f"flickr8k:{self.flickr8k}", channels=3, image_size=64,
                                             mean=list(MEAN), std=list(STD), train_size=len(train),
                                             test_size=len(shown),
                                             extra={"images": len(images), "skipped": problems[:100]}))

        def evaluate(m) -> dict:
            hyps = [vocab.decode(d.tokens) for d in caption_all(m, images[shown])]
            return {"greedy": {"test": {**bleu(refs, hyps), "exact_match": exact_match(refs, hyps), "n": len(refs)}}}

        val = (images[shown], vocab.pad([captions[i][0] for i in shown], MAX_TOKENS))
        return Prepared(model, CaptionTask(MEAN, STD), ComposedLoader(make, len(train), self.batch_size, self.seed),
                        TensorLoader(*val, batch_size=250, shuffle=False), self.train_config(), card, evaluate,
                        self._monitor(vocab, images[shown][:100], refs[:100]))


register_presets(CaptionerRecipe.kind, {"Captions: attention captioner (scenes)": CaptionerRecipe(epochs=10)})
