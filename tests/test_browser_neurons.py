"""Real browser, issue 29: Inside the network's Neurons tab (a channel's feature visualisation and its most exciting
test images, a layer's atlas computed in the background, a tile clicked) and Arithmetic tab (a unit clicked on the
map). Screenshots: inside_neurons.png, inside_atlas.png, inside_arithmetic.png, inside_neurons_cifar.png."""
from __future__ import annotations

import re

import pytest

from tests.browser import choose_model, pick, plot_pixels, settled, shot, start_server, stop_server

expect = pytest.importorskip("playwright.sync_api").expect


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """A server of its own, started fresh: the views' background jobs and caches begin empty."""
    proc, url = start_server(tmp_path_factory.mktemp("neuron_runs"))
    yield url
    stop_server(proc)


def test_a_channel_its_exciting_images_and_the_atlas(app_url, page):
    page.set_viewport_size({"width": 1400, "height": 2400})
    page.goto(app_url + "/inside")
    page.get_by_text("Prediction").first.wait_for(timeout=60_000)
    settled(page)
    page.get_by_role("tab", name="Neurons").click()
    page.get_by_text("excite it most", exact=False).first.wait_for(timeout=300_000)
    expect(page.get_by_text("the optimisation found more", exact=False).first).to_be_visible()
    shot(page, "inside_neurons.png")
    grid = page.locator("[class*='st-key-inside_atlas_grid_'] .js-plotly-plot")
    button = page.get_by_role("button", name="Compute this layer's atlas")
    if button.count():  # not yet in this machine's cache
        button.click()
    grid.or_(page.get_by_text("The atlas stopped", exact=False)).first.wait_for(timeout=300_000)
    assert grid.count(), page.inner_text("body")[-600:]
    settled(page)
    cols, side = 7, 28  # 48 channels of the first conv: a 7-column grid of 28 px tiles, 1 px apart
    row, col = divmod(5, cols)
    page.mouse.click(*plot_pixels(grid, 1 + col * (side + 1) + side / 2, 1 + row * (side + 1) + side / 2))
    page.get_by_text("What excites channel 5 of conv 1 of 3", exact=False).first.wait_for(timeout=300_000)
    shot(page, "inside_atlas.png")
    assert "Traceback" not in page.inner_text("body")


def test_a_unit_clicked_on_the_map_shows_its_arithmetic(app_url, page):
    page.set_viewport_size({"width": 1400, "height": 2000})
    page.goto(app_url + "/inside")
    page.get_by_text("Prediction").first.wait_for(timeout=60_000)
    settled(page)
    page.get_by_role("tab", name="Arithmetic").click()
    page.get_by_text("Sum of the 36 products", exact=False).first.wait_for(timeout=60_000)
    settled(page)
    figure = page.locator("[class*='st-key-inside_arith_map_'] .js-plotly-plot")
    page.mouse.click(*plot_pixels(figure, 4, 3))  # column 4, row 3 of the map
    page.get_by_text("now row 3, column 4", exact=False).first.wait_for(timeout=30_000)
    done = page.get_by_text(re.compile(r"^= -?\d+\.\d{4}, the value the model itself computed at features\.4"))
    expect(done.first).to_be_visible(timeout=30_000)
    shot(page, "inside_arithmetic.png")


def test_a_deep_cifar_channel_looks_like_something(app_url, page):
    page.set_viewport_size({"width": 1400, "height": 1800})
    page.goto(app_url + "/inside")
    page.get_by_text("Prediction").first.wait_for(timeout=60_000)
    choose_model(page, "cifar10_fast_cifar")
    page.get_by_role("tab", name="Neurons").click()
    page.get_by_text("excite it most", exact=False).first.wait_for(timeout=300_000)
    pick(page, "Look at", "conv 4 of 7")
    page.get_by_text("What excites channel 0 of conv 4 of 7", exact=False).first.wait_for(timeout=300_000)
    page.get_by_text("excite it most", exact=False).first.wait_for(timeout=300_000)
    shot(page, "inside_neurons_cifar.png")
    assert "Traceback" not in page.inner_text("body")
