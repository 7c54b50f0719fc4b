"""Real browser, caption generator on the shipped captioner: pick a test scene, move the word slider and see
the attention map move to that word. Screenshots: captions_scene.png, captions_word.png, captions_beam.png.
"""
from __future__ import annotations


from tests.browser import settled, shot


def attention_src(page):
    return page.locator("[data-testid='stImage']", has_text="attention for word").first.locator("img").get_attribute("src")


def test_pick_a_scene_and_move_the_word_slider(app_url, page):
    page.set_viewport_size({"width": 1400, "height": 1500})
    page.goto(app_url + "/captions")
    page.get_by_text("attention for word 1", exact=False).first.wait_for(timeout=180_000)
    settled(page)
    scene = page.locator("[data-testid='stSlider']", has_text="Scene").get_by_role("slider")
    scene.focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")  # scene 3
    page.wait_for_function("() => [...document.querySelectorAll(\"[data-testid='stSlider']\")]"
                           ".some(s => s.innerText.startsWith('Scene') && s.innerText.includes('3'))", timeout=30_000)
    page.get_by_text("attention for word 1", exact=False).first.wait_for(timeout=60_000)
    page.get_by_text("References:", exact=False).first.wait_for(timeout=30_000)
    shot(page, "captions_scene.png")
    body = page.inner_text("body")
    assert "References:" in body and ("Matches a reference caption" in body or "No reference says exactly" in body)

    before = attention_src(page)
    word = page.locator("[data-testid='stSlider']", has_text="Word").get_by_role("slider")
    word.focus()
    for _ in range(4):
        page.keyboard.press("ArrowRight")  # the fifth word
    page.get_by_text("attention for word 5", exact=False).first.wait_for(timeout=60_000)
    shot(page, "captions_word.png")
    assert attention_src(page) != before

    page.get_by_text("Beam search").first.click()
    page.wait_for_function("() => document.querySelectorAll(\"[data-testid='stDataFrame']\").length >= 2",
                           timeout=60_000)  # the beam's alternatives join the top-5 table
    shot(page, "captions_beam.png")
    assert "Traceback" not in page.inner_text("body")


def test_uploads_get_a_caption_or_a_clear_message(app_url, page, tmp_path):
    from PIL import Image

    page.set_viewport_size({"width": 1400, "height": 1300})
    page.goto(app_url + "/captions")
    page.get_by_text("Upload", exact=True).first.click()
    uploader = page.locator("[data-testid='stFileUploader'] input[type='file']")
    uploader.wait_for(state="attached", timeout=60_000)
    (tmp_path / "notes.png").write_bytes(b"this is not a picture")
    uploader.set_input_files(str(tmp_path / "notes.png"))
    page.get_by_text("Cannot use this file", exact=False).first.wait_for(timeout=60_000)
    shot(page, "captions_bad_upload.png")

    photo = Image.new("RGB", (640, 480), (20, 20, 20))
    photo.paste((230, 40, 40), (60, 60, 260, 260))  # a red square at the top left of a dark photo
    photo.save(tmp_path / "photo.jpg")
    page.goto(app_url + "/captions")  # a fresh page: the uploader starts empty
    page.get_by_text("Upload", exact=True).first.click()
    uploader.wait_for(state="attached", timeout=60_000)
    uploader.set_input_files(str(tmp_path / "photo.jpg"))
    page.get_by_text("This model only knows its training scenes", exact=False).first.wait_for(timeout=60_000)
    page.get_by_text("attention for word 1", exact=False).first.wait_for(timeout=60_000)
    shot(page, "captions_upload.png")
    assert "Traceback" not in page.inner_text("body")
