"""Captioning: scene grammar and held-out combinations, vocabulary round trip, greedy and beam decoding
(width 1 = greedy, a hand-built decoder with a known best caption, a decoder that never ends), BLEU,
the Flickr8k-layout reader with malformed lines, and a short training run that lowers the loss."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from core.captions.captioning import (Vocabulary, beam_search, bleu, exact_match, grammar_vocabulary, greedy,
                                      greedy_batch, tokenize)
from core.captions.flickr8k import read_flickr8k
from core.data.base import DataError, Dataset
from core.data.scenes import CELLS, NOUNS, SceneMaker, SceneObject, captions_for, held_out_pairs


def fake_source(channels: int, size: int, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.integers(0, 256, size=(50, channels, size, size), dtype=np.uint8))
    y = torch.arange(50) % 10
    return Dataset("fake", x, y, x, y, [str(i) for i in range(10)], (0.5,) * channels, (0.25,) * channels)


@pytest.fixture(scope="module")
def maker():
    return SceneMaker(fake_source(1, 28, 0), fake_source(1, 28, 1), fake_source(3, 32, 2), split="test")


def test_tokenize_and_vocabulary_round_trip():
    assert tokenize("A large T-shirt, and an 8.") == ["a", "large", "t-shirt", "and", "an", "8"]
    vocab = grammar_vocabulary()
    caption = "a small red 7 to the left of a large blue pair of trousers"
    ids = vocab.encode(caption)
    assert ids[0] == 1 and ids[-1] == 2 and 3 not in ids
    assert vocab.decode(ids[1:]) == caption
    assert vocab.encode("a purple 7")[2] == 3  # unknown word -> <unk>
    padded = vocab.pad([caption, "a cat at the top left"], 20)
    assert padded.shape == (2, 20) and int(padded[1, 8]) == 0
    every_word = {w for o in NOUNS + CELLS for w in tokenize(o)}
    assert every_word <= set(vocab.words)


def test_grammar_describes_relations_and_positions():
    a = SceneObject(3, 2, "red", "small", 0)  # bottom left
    b = SceneObject(23, 3, None, None, 0)  # a cat, bottom right
    caps = captions_for([b, a])
    assert caps[0] == "a small red 3 at the bottom left and a cat at the bottom right"
    assert "a small red 3 to the left of a cat" in caps and "a cat to the right of a small red 3" in caps
    above = captions_for([SceneObject(18, 0, "blue", "large", 0), SceneObject(20, 2, None, None, 0)])
    assert "a large blue bag above an airplane" in above
    assert captions_for([SceneObject(8, 1, "white", "large", 0)])[0] == "a large white 8 at the top right"


def test_held_out_pairs_never_meet_in_seen_scenes(maker):
    held = held_out_pairs()
    assert len(held) == round(0.1 * math.comb(30, 2))
    seen = maker.make(300, seed=1, held_out=held)
    new = maker.make(100, seed=2, held_out=held, mode="held_out")
    pairs = lambda objs: {tuple(sorted(p)) for p in itertools.combinations([o.cls for o in objs], 2)}  # noqa: E731
    assert all(not (pairs(objs) & held) for objs in seen.objects)
    assert all(pairs(objs) & held for objs in new.objects)
    assert seen.images.shape == (300, 3, 64, 64) and seen.images.dtype == torch.uint8
    assert {len(o) for o in seen.objects} == {1, 2, 3}
    again = maker.make(300, seed=1, held_out=held)
    assert torch.equal(again.images, seen.images) and again.captions == seen.captions


class MarkovDecoder:
    """A hand-built 'model': the next word depends only on the previous one, by a fixed table. Ids: 0 pad,
    1 <start>, 2 <end>, 3 'a', 4 'b'."""

    def __init__(self, table: dict[int, list[float]]):
        self.table = {k: torch.log(torch.tensor(v).clamp_min(1e-12)) for k, v in table.items()}

    def encode(self, images):
        b = images.shape[0]
        return torch.zeros(b, 1, 1), (torch.zeros(b, 1), torch.zeros(b, 1))

    def att_feat(self, feats):
        return feats

    def step(self, feats, keys, tokens, state):
        logits = torch.stack([self.table[int(t)] for t in tokens])
        return logits, torch.ones(len(tokens), 1), state


def test_beam_finds_the_best_caption_greedy_misses():
    # from <start>: a 0.5, b 0.4, <end> 0.1; after a: <end> 0.4, a 0.3, b 0.3; after b: <end> 0.95
    decoder = MarkovDecoder({1: [0, 0, 0.1, 0.5, 0.4], 3: [0, 0, 0.4, 0.3, 0.3], 4: [0, 0, 0.95, 0.025, 0.025]})
    image = torch.zeros(1, 3, 8, 8)
    g = greedy(decoder, image)
    assert g.tokens == [3] and math.exp(g.log_prob) == pytest.approx(0.2)
    beams = beam_search(decoder, image, width=2, length_penalty=0.0)
    assert beams[0].tokens == [4] and math.exp(beams[0].log_prob) == pytest.approx(0.38)
    assert [d.tokens for d in beam_search(decoder, image, width=1)] == [g.tokens]
    forced = greedy(decoder, image, prefix=[4])  # choosing 'b' at step 0 decodes the rest from there
    assert forced.tokens == [4] and forced.top[0][0] == (3, pytest.approx(0.5))


def test_a_decoder_that_never_ends_still_stops():
    decoder = MarkovDecoder({1: [0, 0, 0, 0.6, 0.4], 3: [0, 0, 0, 0.6, 0.4], 4: [0, 0, 0, 0.6, 0.4]})
    beams = beam_search(decoder, torch.zeros(1, 3, 8, 8), width=3, max_len=7)
    assert beams and all(len(d.tokens) == 7 and not d.ended for d in beams)


def test_beam_width_one_is_greedy_on_the_real_model():
    from core.models import build_model

    torch.manual_seed(0)
    vocab = grammar_vocabulary()
    model = build_model("captioner", in_channels=3, image_size=64, vocab_size=len(vocab), channels=(8, 8, 16, 16),
                        hidden=32, attention=16, embed=16).eval()
    x = torch.randn(3, 3, 64, 64)
    batch = greedy_batch(model, x, max_len=12)
    for i in range(3):
        one = greedy(model, x[i:i + 1], max_len=12)
        assert one.tokens == batch[i].tokens == beam_search(model, x[i:i + 1], width=1, max_len=12)[0].tokens
        assert len(one.attention) == len(one.tokens) and one.attention[0].shape == (64,)
        assert one.attention[0].sum() == pytest.approx(1.0, abs=1e-5)


def test_bleu_and_exact_match():
    refs = [["a cat at the top left", "there is a cat at the top left"], ["a small red 7 above a dog"]]
    perfect = bleu(refs, ["a cat at the top left", "a small red 7 above a dog"])
    assert perfect["bleu4"] == pytest.approx(1.0) and perfect["bleu1"] == pytest.approx(1.0)
    worse = bleu(refs, ["a dog at the top left", "a small red 7 above a dog"])
    assert worse["bleu4"] < perfect["bleu4"] and worse["bleu1"] < 1
    assert exact_match(refs, ["There is a cat at the top left.", "a small red 1 above a dog"]) == 0.5


def test_flickr8k_layout_reader_reports_bad_lines(tmp_path):
    from PIL import Image

    (tmp_path / "Images").mkdir()
    for name in ("1000_a.jpg", "1001_b.jpg"):
        Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp_path / "Images" / name)
    lines = ["image,caption",
             "1000_a.jpg,A child in a pink dress is climbing up a set of stairs .",
             "1000_a.jpg,\"A girl, smiling, climbs stairs .\"",
             "this line has no comma",
             "1001_b.jpg,",
             "missing.jpg,A dog runs .",
             "notes.txt,not an image",
             "1001_b.jpg,Two dogs play in the grass ."]
    (tmp_path / "captions.txt").write_bytes(("\n".join(lines) + "\n").encode() + b"1001_b.jpg,caf\xe9 bad bytes\n")
    corpus = read_flickr8k(tmp_path)
    assert corpus.images["1000_a.jpg"][1] == "A girl, smiling, climbs stairs ."
    assert corpus.images["1001_b.jpg"] == ["Two dogs play in the grass ."]
    assert [p.split(":")[0] for p in corpus.problems] == ["line 4", "line 5", "line 6", "line 7", "line 9"]
    assert "not UTF-8" in corpus.problems[-1] and "missing.jpg is not in Images/" in corpus.problems[2]
    with pytest.raises(DataError, match="captions.txt"):
        read_flickr8k(tmp_path / "Images")


def test_short_training_lowers_the_caption_loss():
    """Coloured squares in one of four cells, captioned by colour and cell; a few epochs lower the loss."""
    from core.engine import TensorLoader, TrainConfig, fit
    from core.models import build_model
    from core.captions.task import CaptionTask

    rng = np.random.default_rng(0)
    colours = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}
    images, captions = np.zeros((384, 64, 64, 3), np.uint8), []
    for i in range(len(images)):
        name, cell = list(colours)[rng.integers(3)], int(rng.integers(4))
        top, left = (cell // 2) * 32 + 6, (cell % 2) * 32 + 6
        images[i, top:top + 20, left:left + 20] = colours[name]
        captions.append(f"a {name} square at the {CELLS[cell]}")
    vocab = Vocabulary.build(captions)
    x, tokens = torch.from_numpy(images.transpose(0, 3, 1, 2).copy()), vocab.pad(captions)
    model = build_model("captioner", in_channels=3, image_size=64, vocab_size=len(vocab), channels=(8, 16, 16, 32),
                        hidden=64, attention=32, embed=16)
    task = CaptionTask((0.1,) * 3, (0.3,) * 3)
    before = task.summarize(task.evaluation_sums(model.eval(), (x[:128], tokens[:128])))["loss"]
    fit(model, task, TensorLoader(x, tokens, batch_size=32), None,
        TrainConfig(epochs=4, lr=5e-3, optimizer="adamw", keep_best=False, channels_last=False, threads=2))
    after = task.summarize(task.evaluation_sums(model.eval(), (x[:128], tokens[:128])))
    assert after["loss"] < 0.6 * before and after["accuracy"] > 0.7


def test_a_flickr8k_folder_trains_end_to_end(tmp_path):
    """The training path a Flickr8k owner uses, on a 6-image folder in that layout (one image is corrupt)."""
    from PIL import Image

    from core.captions.recipe import CaptionerRecipe
    from core.cli import main
    from core.engine.run import run
    from core.engine.checkpoint import load_checkpoint

    (tmp_path / "Images").mkdir()
    lines = ["image,caption"]
    for i, (colour, word) in enumerate([((220, 30, 30), "red"), ((30, 200, 30), "green"), ((30, 30, 220), "blue")] * 2):
        Image.new("RGB", (80, 60), colour).save(tmp_path / "Images" / f"{i}.jpg")
        lines += [f"{i}.jpg,A {word} picture .", f"{i}.jpg,Something {word} ."]
    (tmp_path / "Images" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    lines.append("broken.jpg,A broken picture .")
    (tmp_path / "captions.txt").write_text("\n".join(lines) + "\n")
    card = run(CaptionerRecipe(flickr8k=str(tmp_path), epochs=1, min_count=1, channels=(8, 8, 16, 16), hidden=32,
                               attention=16, embed=16), out=tmp_path / "ckpt")
    assert card.dataset.extra["images"] == 6 and card.dataset.test_size == 1
    assert any("broken.jpg" in p for p in card.dataset.extra["skipped"])
    assert {"bleu1", "bleu4", "exact_match"} <= set(card.metrics["greedy"]["test"])
    model, loaded = load_checkpoint(tmp_path / "ckpt")
    assert "red" in loaded.section("vocabulary") and model.embed.num_embeddings == len(loaded.section("vocabulary"))
    assert main(["train-captioner", "--flickr8k", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 2
