"""Teach: new classes from a few shots each (camera, uploads, sample photos), the Teachable Machine way.

    python -m core teach FOLDER --out CKPT   (a folder or zip of class folders; a verb of core.teach.verbs)

`shots` turns any image into a shot (the 224 x 224 RGB square the model reads) and keeps each shot's
features from the frozen, pretrained EfficientNet-Lite0 (the shot and its mirror image, one forward pass,
cached by the shot's bytes, so adding a shot costs one pass and nothing is computed twice). `head` trains
the linear head on those features (full-batch, seconds), checks it on shots it did not see (leave-one-out
for few shots, k-fold for more, every fold trained at once as one batched problem), fits the temperature
and the "none of these" threshold on those held-out answers, and saves an ordinary classifier checkpoint:
the Lite0 network by reference (its weights come from the package) and the head, so Draw, Inside, Compare
runs and the ONNX export read it like any other model.
"""
