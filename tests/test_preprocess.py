"""MNIST-style preprocessing of drawings: geometry, and real test digits drawn badly still classify."""
import numpy as np
import pytest
import torch
from PIL import Image

from core.draw.preprocess import preprocess_digit, preprocess_photo, to_grey_ink


def test_steps_and_geometry():
    canvas = np.zeros((280, 280, 4), np.uint8)
    canvas[40:220, 200:240] = 255  # a tall bar far to the right
    out = preprocess_digit(canvas)
    assert [s[0].split(" ")[0] for s in out.steps] == ["drawing", "cropped", "scaled", "centred"]
    ys, xs = np.nonzero(out.image > 20)
    assert ys.max() - ys.min() + 1 == 20  # the long side fills the 20-pixel box
    com_y = (out.image.sum(1) * np.arange(28)).sum() / out.image.sum()
    com_x = (out.image.sum(0) * np.arange(28)).sum() / out.image.sum()
    assert abs(com_y - 13.5) <= 1 and abs(com_x - 13.5) <= 1
    off = preprocess_digit(canvas, centre=False)
    assert off.image[:, :14].sum() < off.image[:, 14:].sum() / 10  # without centring the ink stays right


def test_empty_and_inverted_inputs():
    assert preprocess_digit(np.zeros((100, 100), np.uint8)).empty
    paper = np.full((50, 50, 3), 255, np.uint8)
    paper[10:40, 20:25] = 0  # dark ink on white paper
    grey = to_grey_ink(paper)
    assert grey[20, 22] == 1.0 and grey[0, 0] == 0.0
    assert preprocess_photo(paper, size=32, channels=3).shape == (3, 32, 32)


def _badly_drawn(digit: np.ndarray, rng) -> np.ndarray:
    """A 28x28 test digit drawn on a 280x280 canvas: shrunk or grown, shifted, with a thicker pen."""
    size = int(rng.integers(90, 230))
    img = Image.fromarray(digit).resize((size, size), Image.Resampling.BILINEAR)
    from PIL import ImageFilter
    img = img.filter(ImageFilter.MaxFilter(int(rng.choice([3, 5, 7]))))  # thicker strokes
    canvas = np.zeros((280, 280), np.uint8)
    top, left = rng.integers(0, 280 - size + 1, size=2)
    canvas[top:top + size, left:left + size] = np.asarray(img)
    return canvas


def test_badly_drawn_test_digits_still_classify(real_data):
    from core.engine.checkpoint import load_checkpoint
    from core.data import load_dataset
    from core import paths
    from core.engine.predict import predict_logits

    data = load_dataset("mnist", real_data)
    model, card = load_checkpoint(paths.SHIPPED_CHECKPOINTS / "mnist_fast_cnn")
    rng = np.random.default_rng(0)
    idx = rng.choice(len(data.test_x), 500, replace=False)
    images = np.stack([preprocess_digit(_badly_drawn(data.test_x[i, 0].numpy(), rng)).image for i in idx])
    logits = predict_logits(model, torch.from_numpy(images)[:, None], card.dataset.mean, card.dataset.std)
    accuracy = float((logits.argmax(1) == data.test_y[idx]).float().mean())
    print(f"badly drawn MNIST test digits after preprocessing: {accuracy:.2%} correct")
    assert accuracy >= 0.98


@pytest.mark.parametrize("mode,size,fmt", [("L", (28, 28), "PNG"), ("RGBA", (300, 200), "PNG"), ("P", (64, 64), "GIF"),
                                           ("I;16", (40, 50), "PNG"), ("CMYK", (90, 60), "JPEG"), ("1", (33, 33), "BMP"),
                                           ("RGB", (1, 1), "WEBP"), ("RGB", (1000, 3), "PNG"), ("LA", (20, 80), "PNG")])
def test_uploads_of_any_mode_and_shape_become_model_inputs(mode, size, fmt):
    import io

    from PIL import Image

    from core.data.images import decode_image
    from core.draw.preprocess import preprocess_photo

    buffer = io.BytesIO()
    colour = {"1": 1, "RGBA": (120, 120, 120, 255), "LA": (120, 255)}.get(mode, 120)  # alpha modes: opaque
    Image.new(mode, size, colour).save(buffer, format=fmt)
    for channels, side in ((1, 28), (3, 32)):
        out = preprocess_photo(decode_image(buffer.getvalue()), size=side, channels=channels)
        assert out.shape == (channels, side, side) and out.dtype == np.uint8


def test_unreadable_and_oversized_uploads_are_refused_with_a_reason():
    import io

    from PIL import Image

    from core.data.images import MAX_PIXELS, decode_image

    with pytest.raises(ValueError, match="not a readable image|damaged"):
        decode_image(b"GIF89a this is not really a gif")
    side = int(MAX_PIXELS ** 0.5) + 10
    buffer = io.BytesIO()
    Image.new("1", (side, side)).save(buffer, format="PNG")  # tiny file, huge picture
    with pytest.raises(ValueError, match="megapixels"):
        decode_image(buffer.getvalue())


def test_photos_on_light_backgrounds_are_inverted_for_dark_background_models():
    from core.draw.preprocess import has_dark_background, needs_inversion

    photo = np.full((120, 90, 3), 240, np.uint8)
    photo[30:90, 35:55] = 20  # a dark object on white paper
    grey = preprocess_photo(photo, size=28, channels=1, dark_background=True)[0]
    assert grey[0].mean() < 30 and grey[14, 14] > 200  # black frame, light object, like Fashion-MNIST
    assert preprocess_photo(photo, size=28, channels=1)[0][0].mean() > 200  # unchanged when not asked
    assert not needs_inversion(grey) and needs_inversion(255 - grey)
    assert preprocess_photo(photo, size=32, channels=3, dark_background=True)[:, 0, 0].tolist() == [240] * 3
    from core import paths
    from core.engine.checkpoint import read_card

    assert has_dark_background(read_card(paths.SHIPPED_CHECKPOINTS / "fashion_fast_cifar"))  # grey, mean 0.286
    assert not has_dark_background(read_card(paths.SHIPPED_CHECKPOINTS / "efficientnet_lite0_imagenet"))
