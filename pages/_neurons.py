"""Inside the network's neuron views: what one channel (or class) looks for, by optimisation and among the test
images, the atlas of a whole layer (a background job, cached per checkpoint), each followed over training for runs
with snapshots; and the arithmetic of one conv output, clicked on its map."""
from __future__ import annotations

import numpy as np
import streamlit as st

from core.charts import atlas_figure, map_figure, numbers_figure
from core.data import DataError
from core.engine.checkpoint import list_snapshots
from core.engine.predict import to_batch
from core.inside.arithmetic import explain_unit
from core.inside.atlas import cached_atlas, compute_atlas, model_digest, search_images
from core.inside.channels import own_copy
from core.inside.explain import activations, conv_layer_names, layer_label
from core.inside.featvis import visualize
from core.inside.units import channel_summary, outline, receptive_field, top_images
from core.viz import enlarge, filter_montage
from pages._models import cached_snapshot
from pages._ui import cached_dataset, job, jobs, pending

CLASSES = "class logits"


def _background(key: tuple, compute, model) -> dict:
    """The job `key` (`pages._ui.job`), started on a private copy of the shared model unless it ran, runs or failed
    (a failed one is shown once, then forgotten: the next visit tries again, never a loop of retries)."""
    found = jobs().get(key)
    if found is not None:
        return found
    own = own_copy(model)
    return job(key, lambda report: compute(own, report))


def _test_images(model, card, layer, found):
    """(images, `Summary` of the layer on them, a phrase naming them, receptive field or None), or the reason why
    there are none (a string), for the (images, phrase) `found` in the page's data set."""
    if isinstance(found, str):
        return found
    images, what = found
    field = receptive_field(model, card, layer) if layer else None
    return images.numpy(), channel_summary(model, card, layer, images), what, field


def neurons_tab(folder: str, model, card, label: str) -> None:
    """One channel (or class): its visualisation, filter, most exciting and inhibiting test images; the layer's
    atlas. Each is computed in the background: the page never waits for them."""
    epochs = list_snapshots(folder)
    if epochs:
        epoch = st.select_slider("After epoch", epochs, value=epochs[-1], key="inside_neuron_epoch",
                                 help="This run kept a snapshot per epoch: watch the unit form over training.")
        model = cached_snapshot(folder, epoch)
    convs, classes, digest = conv_layer_names(model), card.dataset.class_names, model_digest(model)
    left, mid, right = st.columns([2, 1, 1])
    layer = left.selectbox("Look at", convs + [CLASSES], key=f"inside_neuron_layer_{label}",
                           format_func=lambda n: n if n == CLASSES else layer_label(n, convs))
    layer = None if layer == CLASSES else layer
    count = len(classes) if layer is None else dict(model.named_modules())[layer].out_channels
    index_key, grid_key = f"inside_neuron_index_{label}_{layer}", f"inside_atlas_grid_{digest}_{layer}"
    clicked = _clicked(grid_key)
    if clicked is not None and clicked != st.session_state.get(f"{grid_key}_seen"):  # a tile of the atlas
        st.session_state[index_key] = st.session_state[f"{grid_key}_seen"] = clicked
    index = int(mid.number_input("Class" if layer is None else "Channel", 0, count - 1, key=index_key))
    mode = "centre" if layer and right.toggle("Centre unit only", key="inside_neuron_centre",
                                              help="Excite the map's middle unit instead of the whole map.") else "mean"
    n = right.slider("Images", 1, 4, 1, key="inside_neuron_n", help="Several images, pushed apart by a diversity "
                     "term: a channel that answers to more than one pattern shows each.")
    vis = _background(("vis", digest, layer, index, mode, n), lambda own, p: visualize(
        own, card, layer, [index], mode=mode, per_channel=n, diversity=0.5 if n > 1 else 0.0, progress=p), model)
    try:  # the data set the page holds already (loaded once per server): a job never loads one itself
        found = search_images(card, data=cached_dataset(card.dataset.name))
    except DataError as exc:
        found = f"No test images here to rank ({exc})."
    data = _background(("tests", digest, layer), lambda own, p: _test_images(own, card, layer, found), model)
    waiting = pending(vis, data)

    @st.fragment(run_every=0.5 if waiting else None)
    def show():
        if pending(vis, data):
            st.progress(vis["progress"], text="Optimising the input from noise (a few seconds, once per channel)...")
        elif waiting:
            st.rerun(scope="app")  # ready: show it with the rest of the tab, and stop polling
        elif vis["error"] or data["error"]:
            st.error(f"Could not compute this view: {vis['error'] or data['error']}. Change a setting or open the "
                     "tab again to retry.")
            for key, entry in list(jobs().items()):
                if entry is vis or entry is data:
                    jobs().pop(key, None)
        else:
            name = str(classes[index]) if layer is None else f"channel {index} of {layer_label(layer, convs)}"
            _visualisation(model, layer, index, name, vis["result"])
            _exciting(data["result"], index, float(np.max(vis["result"].activations)), mode)
    show()
    if layer:
        _atlas(model, card, layer, digest, grid_key, index)


def _visualisation(model, layer, index: int, name: str, result) -> None:
    n = len(result.images)
    spec = [1] * n + ([1] if layer else [])
    cols = st.columns(spec + ([5 - len(spec)] if len(spec) < 5 else []))
    for col, img, value in zip(cols, result.images, result.activations):
        col.image(enlarge(img, 200), caption=f"activation {value:.3f}")
    if layer:
        cols[n].image(enlarge(filter_montage(dict(model.named_modules())[layer].weight[index:index + 1], cell=28), 120),
                      caption="its filter (mean over input channels unless RGB)")
    st.caption(f"What excites {name} most: an input optimised from noise in {result.seconds:.1f} s (Fourier-space "
               "parameterisation, random jitter, scale and rotation each step).")


def _exciting(found, index: int, reached: float, mode: str) -> None:
    if isinstance(found, str):
        st.info(found)
        return
    images, summary, what, field = found
    top = top_images(summary, index, field)
    best, read = summary.best(index, mode), "its centre unit" if mode == "centre" else "the mean of its map"
    ranked, read = ("by their strongest unit, whose patch is outlined", read) if field else \
        ("by the logit", "the logit")
    st.markdown(f"**The 9 of {what} that excite it most** (ranked {ranked}). Read as {read}, the optimised input "
                f"reaches {reached:.3f} and the best of these images {best:.3f}: the optimisation "
                f"{'found more' if reached > best else 'did not reach it'}.")
    for col, i, value, box in zip(st.columns(9), top.top, top.top_values, top.top_boxes):
        col.image(outline(images[i], box) if field else enlarge(images[i], 96), caption=f"{value:.2f}")
    st.markdown(f"**The 9 that inhibit it most** (the lowest {'mean over its map' if field else 'logit'})")
    for col, i, value in zip(st.columns(9), top.bottom, top.bottom_values):
        col.image(enlarge(images[i], 96), caption=f"{value:.2f}")


def _clicked(key: str) -> int | None:
    """The index of the clicked point of a chart whose points are its second trace (the tiles, the units)."""
    points = ((st.session_state.get(key) or {}).get("selection") or {}).get("points", [])
    picked = [p for p in points if p.get("curve_number") == 1]
    return int(picked[0]["point_index"]) if picked else None


def _atlas(model, card, layer: str, digest: str, key: str, index: int) -> None:
    st.markdown("**Neuron atlas**: every channel of this layer, each by optimisation. Click a tile to look at it.")
    atlas, task = cached_atlas(digest, layer), jobs().get(("atlas", digest, layer))
    if atlas is None and task is None:
        if st.button("Compute this layer's atlas", key=f"inside_atlas_{layer}", icon=":material/grid_view:"):
            _background(("atlas", digest, layer), lambda own, p: compute_atlas(own, card, layer, digest, p), model)
            st.rerun()
        return
    running = atlas is None and pending(task)

    @st.fragment(run_every=1.0 if running else None)
    def watch():
        now = cached_atlas(digest, layer)
        if now is None and task["error"]:
            st.error(f"The atlas stopped: {task['error']}. Press the button to try again.")
            jobs().pop(("atlas", digest, layer), None)
        elif now is None:
            st.progress(task["progress"], text=f"Optimising {layer}'s channels: {task['progress']:.0%} (in the "
                                              "background: the other tabs work meanwhile)")
        elif running:
            st.rerun(scope="app")  # done: show it with the rest of the page, and stop polling
        else:
            if _clicked(key) is not None and _clicked(key) != st.session_state.get(f"{key}_seen"):
                st.rerun(scope="app")  # a new tile: the whole tab follows it
            st.plotly_chart(atlas_figure(now["images"], index), key=key, on_select="rerun", selection_mode="points",
                            config={"displayModeBar": False})
    watch()


def arithmetic_tab(model, card, image, label: str) -> None:
    """Click a unit of a conv layer's output map: the window it reads, the kernel, the products, the sum, the bias and
    the steps after the conv, ending on the value in the map."""
    convs = conv_layer_names(model)
    if not convs:
        st.info("This model has no convolution layer.")
        return
    x = to_batch(image, card)
    left, right = st.columns(2)
    layer = left.selectbox("Conv layer", convs, key=f"inside_arith_layer_{label}",
                           format_func=lambda n: layer_label(n, convs))
    out = activations(model, x, [layer])[1][layer][0]
    channel = int(right.number_input("Output channel", 0, out.shape[0] - 1,
                                     key=f"inside_arith_channel_{label}_{layer}"))
    key = f"inside_arith_map_{label}_{layer}_{channel}"
    flat = _clicked(key)
    flat = int(out[channel].abs().argmax()) if flat is None else flat  # opens on the unit of largest size
    row, col = divmod(flat, out.shape[2])
    unit = explain_unit(model, x, layer, channel, row, col)
    map_col, sum_col = st.columns([2, 3])
    map_col.plotly_chart(map_figure(out[channel].numpy(), (row, col)), key=key, on_select="rerun",
                         selection_mode="points", config={"displayModeBar": False})
    map_col.caption(f"Output channel {channel} of {layer}: click a unit (now row {row}, column {col}).")
    _equation(unit, sum_col)
    _matrices(unit)


def _equation(unit, where) -> None:
    lines = [f"Sum of the {unit.products.size:,} products = **{unit.total:.4f}**"]
    lines.append(f"plus the bias {unit.bias:.4f} = **{unit.total + unit.bias:.4f}** (the conv's output: "
                 f"{unit.conv_value:.4f})")
    lines += [f"{s.name}: {s.what} = **{s.value:.4f}**" for s in unit.steps]
    where.markdown("\n\n".join(lines))
    last = unit.steps[-1] if unit.steps else None
    where.success(f"= {unit.final:.4f}, the value the model itself computed at {last.name if last else unit.layer} "
                  f"(row {(last.position if last else unit.position)[0]}, column "
                  f"{(last.position if last else unit.position)[1]})", icon=":material/check:")


def _matrices(unit) -> None:
    share = unit.per_channel
    order = np.argsort(-np.abs(share))[:4]
    source = "the normalised input image" if unit.reads_image else "the conv's input (what the layers before it output)"
    st.markdown(f"**The window it reads** (rows {unit.input_box[0]} to {unit.input_box[2] - 1}, columns "
                f"{unit.input_box[1]} to {unit.input_box[3] - 1} of {source}, {len(share)} channels"
                + (f"; the {len(order)} that add most, by size" if len(share) > len(order) else "") + ")")
    small = unit.kernel.shape[-1] <= 7
    for c in order:
        a, b, p = st.columns(3)
        channel = unit.input_channels[c]
        for where, values, title in ((a, unit.window[c], f"input channel {channel}"), (b, unit.kernel[c], "kernel"),
                                     (p, unit.products[c], f"products: sum {share[c]:.3f}")):
            where.plotly_chart(numbers_figure(values, title, text=small), key=f"inside_arith_{title}_{c}",
                               config={"displayModeBar": False})
