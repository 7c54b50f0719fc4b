"""Attribution maps through Captum, side by side, and the model-randomisation sanity check.

Captum (Meta's interpretability library for PyTorch) computes every method here. HiResCAM, which Captum
lacks, is built here the same way, from Captum's LayerGradientXActivation. Every method
explains one scalar per image: a `Target` (model output -> (B,)) such as one class's logit, so multi-head
models (the composer's pair CNN) are explained head by head. Maps come back as (B, H, W) in [0, 1] at the
input's resolution: signed pixel attributions are shown by magnitude, the largest channel per pixel.

`compare(...)` runs every method on one input and reports what each cost; `randomisation_test(...)` is the
cascading model-parameter randomisation test of Adebayo et al. (2018): re-initialise the layers from the
output down and measure how much each method's map changes (Spearman rank correlation with the map of the
trained model). A method whose map barely changes while the model is destroyed explains the input, not
the model.
"""
from __future__ import annotations

import copy
import time
import warnings
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.models import evaluating

warnings.filterwarnings("ignore", category=UserWarning, module=r"captum\.")  # its notes on hooks fill a server log
Target = Callable[[torch.Tensor], torch.Tensor]
NEEDS_CONV = {"Grad-CAM", "HiResCAM", "Guided Grad-CAM"}
METHODS = ["Grad-CAM", "HiResCAM", "Guided Grad-CAM", "Saliency", "SmoothGrad", "Integrated Gradients", "Occlusion"]
WHAT = {  # one line per method, for the page
    "Grad-CAM": "channel-averaged gradients x activations at a conv layer (Selvaraju et al.)",
    "HiResCAM": "gradient x activation at every position of a conv layer (Draelos & Carin); CNN Studio's own",
    "Guided Grad-CAM": "Grad-CAM times guided backpropagation: sharp edges, class-discriminative",
    "Saliency": "|d output / d pixel| (Simonyan et al.)",
    "SmoothGrad": "saliency averaged over 16 noisy copies of the input (Smilkov et al.)",
    "Integrated Gradients": "gradients integrated from the mean image to the input, 32 steps (Sundararajan et al.)",
    "Occlusion": "drop of the output when a square of the mean value hides each spot (Zeiler & Fergus)",
}


class _Scored(nn.Module):
    """The model with `target` applied: one scalar per image, as (B, 1), for methods that need a module."""

    def __init__(self, model: nn.Module, target: Target):
        super().__init__()
        self.model, self.target = model, target

    def forward(self, x):
        return self.target(self.model(x)).reshape(-1, 1)


def normalise(maps: torch.Tensor) -> torch.Tensor:
    """Scale each map of a (B, H, W) batch to [0, 1] (an all-zero map stays zero)."""
    flat = maps.flatten(1)
    lo, hi = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    return ((flat - lo) / (hi - lo).clamp_min(1e-12)).view_as(maps)


def _pixels(attr: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) signed pixel attributions -> (B, H, W) magnitude in [0, 1]."""
    return normalise(attr.detach().abs().amax(dim=1))


def _without_inplace(model: nn.Module) -> nn.Module:
    """A copy whose activations are not in-place (guided backpropagation hooks their backward pass)."""
    twin = copy.deepcopy(model)
    for module in twin.modules():
        if hasattr(module, "inplace"):
            module.inplace = False
    return twin.eval()


def layer_cam(model: nn.Module, x: torch.Tensor, target: Target, layer: str) -> torch.Tensor:
    """Grad-CAM by Captum's LayerGradCam, upsampled to the input and scaled to [0, 1]: (B, H, W)."""
    from captum.attr import LayerAttribution, LayerGradCam

    module = dict(model.named_modules())[layer]
    scored = _Scored(model, target)
    attr = LayerGradCam(scored, module).attribute(x, target=0, relu_attributions=True)
    if attr.dim() != 4:
        raise ValueError(f"layer {layer!r} outputs shape {tuple(attr.shape)}; Grad-CAM needs (B, C, H, W)")
    return normalise(LayerAttribution.interpolate(attr.detach(), tuple(x.shape[-2:]), "bilinear")[:, 0])


def hires_cam(model: nn.Module, x: torch.Tensor, target: Target, layer: str) -> torch.Tensor:
    """HiResCAM (Draelos & Carin, 2020): gradient x activation at every position of `layer`, summed over
    channels, ReLU, upsampled and scaled to [0, 1]: (B, H, W). Unlike Grad-CAM it does not average each
    channel's gradient over positions, so for heads that read a flattened map position by position (the
    composer's pair CNN) it shows the locations the output actually used."""
    from captum.attr import LayerAttribution, LayerGradientXActivation

    module = dict(model.named_modules())[layer]
    attr = LayerGradientXActivation(_Scored(model, target), module).attribute(x, target=0)
    if attr.dim() != 4:
        raise ValueError(f"layer {layer!r} outputs shape {tuple(attr.shape)}; HiResCAM needs (B, C, H, W)")
    cam = F.relu(attr.detach().sum(1, keepdim=True))
    return normalise(LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), "bilinear")[:, 0])


def occlusion_map(model: nn.Module, x: torch.Tensor, target: Target, patch: int, stride: int,
                  fill: float = 0.0, batch_size: int = 64) -> torch.Tensor:
    """Captum's Occlusion for one image: per pixel, the mean drop of `target` over the squares that hide it
    (positive: evidence for the target): (H, W), not rescaled, so its values read in the target's units."""
    from captum.attr import Occlusion

    if x.shape[0] != 1:
        raise ValueError("occlusion explains one image at a time")
    channels = x.shape[1]
    with torch.no_grad():
        attr = Occlusion(lambda inp: target(model(inp))).attribute(
            x, sliding_window_shapes=(channels, patch, patch), strides=(channels, stride, stride), baselines=fill,
            perturbations_per_eval=batch_size)
    return attr[0].mean(0)


def attribute(method: str, model: nn.Module, x: torch.Tensor, target: Target,
              layer: str | None = None) -> torch.Tensor:
    """One method's maps (B, H, W) in [0, 1]; `layer` is the conv layer of the CAM methods."""
    if method in NEEDS_CONV and layer is None:
        raise ValueError(f"{method} needs a convolution layer")
    if method not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}; known: {', '.join(METHODS)}")
    with evaluating(model):
        return _METHODS[method](model, x.detach(), target, layer)


def _guided_grad_cam(model, x, target, layer) -> torch.Tensor:
    from captum.attr import GuidedGradCam

    twin = _without_inplace(model)
    return _pixels(GuidedGradCam(_Scored(twin, target), dict(twin.named_modules())[layer]).attribute(x, target=0))


def _saliency(model, x, target, layer) -> torch.Tensor:
    from captum.attr import Saliency

    return _pixels(Saliency(lambda inp: target(model(inp))).attribute(x, abs=True))


def _smoothgrad(model, x, target, layer) -> torch.Tensor:
    from captum.attr import NoiseTunnel, Saliency

    tunnel = NoiseTunnel(Saliency(lambda inp: target(model(inp))))
    return _pixels(tunnel.attribute(x, nt_type="smoothgrad", nt_samples=16, stdevs=float(x.max() - x.min()) * 0.15,
                                    abs=True, nt_samples_batch_size=16))


def _integrated_gradients(model, x, target, layer) -> torch.Tensor:
    from captum.attr import IntegratedGradients

    ig = IntegratedGradients(lambda inp: target(model(inp)))  # (B,) scalars: Captum needs no target index then
    return _pixels(ig.attribute(x, baselines=torch.zeros_like(x), n_steps=32, internal_batch_size=32))


def _occlusion(model, x, target, layer) -> torch.Tensor:
    side = x.shape[-1]
    patch, stride = max(2, side // 5), max(1, side // 14 if side <= 64 else side // 8)
    drops = torch.stack([occlusion_map(model, x[i:i + 1], target, patch, stride) for i in range(len(x))])
    return normalise(drops.clamp_min(0))


_METHODS = {"Grad-CAM": layer_cam, "HiResCAM": hires_cam, "Guided Grad-CAM": _guided_grad_cam,
            "Saliency": _saliency, "SmoothGrad": _smoothgrad, "Integrated Gradients": _integrated_gradients,
            "Occlusion": _occlusion}


def compare(model: nn.Module, x: torch.Tensor, target: Target, layer: str | None,
            methods: list[str] | None = None, layer_text: str | None = None) -> list[dict]:
    """Every method on the same input: [{"method", "label" (e.g. "Grad-CAM at conv 3 of 3", the layer named by
    `layer_text` if given), "map" (H, W) numpy in [0, 1], "ms", "what", "empty": whether the map is all zeros}];
    methods that need a conv layer get map None when the model has none. The costs are comparable: Captum is
    imported and the model run forward and backward once before any method is timed."""
    import captum.attr  # noqa: F401  (its import would otherwise be counted in the first method's time)

    with evaluating(model):
        probe = x[:1].detach().clone().requires_grad_(True)
        target(model(probe)).sum().backward()
    rows = []
    for method in methods or METHODS:
        label = f"{method} at {layer_text or layer}" if method in NEEDS_CONV else method
        if method in NEEDS_CONV and layer is None:
            rows.append({"method": method, "label": label, "map": None, "ms": 0.0, "what": "needs a conv layer",
                         "empty": False})
            continue
        started = time.perf_counter()
        heat = attribute(method, model, x[:1], target, layer)[0].numpy()
        rows.append({"method": method, "label": label, "map": heat, "ms": (time.perf_counter() - started) * 1000,
                     "what": WHAT[method], "empty": bool(heat.max() <= 0)})
    return rows


def empty_note(method: str, class_name: str, layer_text: str | None) -> str:
    """Why a map is all zeros, in words a reader can check against the method's definition."""
    if method in ("Grad-CAM", "Guided Grad-CAM", "HiResCAM"):
        return (f"{method} is empty for {class_name} at {layer_text}: at every position the channels' activations, "
                f"weighted by how much each raises {class_name}'s score, sum to zero or less, and the method keeps "
                "only the positive part. Nothing at this layer is evidence for this class; saliency or Integrated "
                "Gradients show what lowers or raises it.")
    return (f"{method} is empty for {class_name}: the score does not change with any pixel here (a saturated or "
            "constant output).")


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = a.ravel().argsort().argsort().astype(np.float64), b.ravel().argsort().argsort().astype(np.float64)
    if ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def parametrised_layers(model: nn.Module) -> list[str]:
    """Names of the layers that hold weights, in forward (registration) order."""
    return [n for n, m in model.named_modules()
            if n and not list(m.children()) and any(True for _ in m.parameters(recurse=False))]


def randomisation_test(model: nn.Module, x: torch.Tensor, target: Target, layer: str | None,
                       methods: list[str], stages: int = 4, seed: int = 0) -> dict:
    """Cascading randomisation (Adebayo et al.): re-initialise the weighted layers from the output down in
    `stages` steps, up to all of them, and measure each method's map against the trained model's.

    Returns {"stages": [how many layers were re-initialised], "layers": total, "similarity": {method: [rank
    correlation per stage]}, "maps": {method: the map with every layer re-initialised}}."""
    torch.manual_seed(seed)
    names = parametrised_layers(model)
    if not names:
        raise ValueError("the model has no weights to randomise")
    counts = sorted({max(1, round(len(names) * k / stages)) for k in range(1, stages + 1)})
    methods = [m for m in methods if layer is not None or m not in NEEDS_CONV]
    original = {m: attribute(m, model, x[:1], target, layer)[0].numpy() for m in methods}
    result = {"stages": counts, "layers": len(names), "similarity": {m: [] for m in methods}, "maps": {}}
    for count in counts:
        broken = copy.deepcopy(model).eval()
        modules = dict(broken.named_modules())
        with torch.no_grad():
            for name in names[len(names) - count:]:
                module = modules[name]
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
                else:
                    for p in module.parameters(recurse=False):
                        p.normal_(0, 0.05)
        for m in methods:
            heat = attribute(m, broken, x[:1], target, layer)[0].numpy()
            result["similarity"][m].append(_spearman(original[m], heat))
            if count == counts[-1]:
                result["maps"][m] = heat
    return result



def sanity_table(test: dict) -> dict[str, list]:
    """A randomisation test as table columns: the method, then the similarity after each stage."""
    columns = {"method": list(test["similarity"])}
    for i, count in enumerate(test["stages"]):
        label = "all layers" if count == test["layers"] else f"top {count} of {test['layers']} layers"
        columns[f"{label} re-initialised"] = [round(v[i], 2) for v in test["similarity"].values()]
    return columns
