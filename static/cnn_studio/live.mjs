// CNN Studio in the browser: the drawing pad's pixels, MNIST-style preprocessing and the model's prediction with
// ONNX Runtime Web, written once for the Draw page's pad and for the static page `python -m core export --web`.
//
// Every step is the Python one (core/draw/preprocess.py) rule for rule, so the browser's answer while the pen
// moves is the server's after it lifts: strokes inked by distance to their segments with a one-pixel edge,
// quantised to bytes; cropped to the ink (> 0.05); scaled into a 20x20 box with Pillow's Lanczos filter (its
// coefficients and two passes, float32 between them); quantised to bytes; centred by the bytes' centre of mass
// (whole-number sums, so both sides break its ties alike) in 28x28.

// ---- ink ---------------------------------------------------------------------------------------------------

/** Ink one polyline [[x, y], ...] of pen width w into `ink` (Float64Array size*size, values 0..1), in place. */
export function inkStroke(ink, size, points, w) {
  const pts = points.length > 1 ? points : [points[0], points[0]];
  for (let i = 0; i + 1 < pts.length; i++) inkSegment(ink, size, pts[i][0], pts[i][1], pts[i + 1][0], pts[i + 1][1], w / 2);
}

/** One segment of radius r: a pixel's ink is max(0, min(1, r + 0.5 - d)), d its centre's distance to the segment. */
export function inkSegment(ink, size, x0, y0, x1, y1, r) {
  const reach = r + 0.5;
  const left = Math.max(Math.floor(Math.min(x0, x1) - reach), 0), right = Math.min(Math.ceil(Math.max(x0, x1) + reach), size - 1);
  const top = Math.max(Math.floor(Math.min(y0, y1) - reach), 0), bottom = Math.min(Math.ceil(Math.max(y0, y1) + reach), size - 1);
  const dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
  for (let y = top; y <= bottom; y++) {
    const py = y + 0.5;
    for (let x = left; x <= right; x++) {
      const px = x + 0.5;
      let t = len2 > 0 ? ((px - x0) * dx + (py - y0) * dy) / len2 : 0;
      t = t < 0 ? 0 : t > 1 ? 1 : t;
      const ex = px - x0 - t * dx, ey = py - y0 - t * dy;
      const v = reach - Math.sqrt(ex * ex + ey * ey);
      if (v > 0) {
        const k = y * size + x, c = v > 1 ? 1 : v;
        if (c > ink[k]) ink[k] = c;
      }
    }
  }
}

/** Numpy's rint: round half to even. */
export function rint(v) {
  const f = Math.floor(v), diff = v - f;
  if (diff > 0.5) return f + 1;
  if (diff < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** The pad's strokes [{w, p: [[x, y], ...]}] as bytes (Uint8Array size*size), ink bright. */
export function renderStrokes(strokes, size) {
  const ink = new Float64Array(size * size);
  for (const s of strokes) if (s.p && s.p.length) inkStroke(ink, size, s.p, s.w);
  return toBytes(ink);
}

export function toBytes(ink) {
  const out = new Uint8Array(ink.length);
  for (let i = 0; i < ink.length; i++) out[i] = rint(ink[i] * 255);
  return out;
}

// ---- Pillow's Lanczos resize of a float image ----------------------------------------------------------------

function sinc(x) {
  if (x === 0) return 1;
  x *= Math.PI;
  return Math.sin(x) / x;
}
const lanczos = (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0);

function coefficients(inSize, outSize) {
  const scale = inSize / outSize, filterscale = Math.max(scale, 1), support = 3 * filterscale, ss = 1 / filterscale;
  const rows = [];
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    const k = new Float64Array(xmax);
    let ww = 0;
    for (let x = 0; x < xmax; x++) ww += (k[x] = lanczos((x + xmin - center + 0.5) * ss));
    if (ww !== 0) for (let x = 0; x < xmax; x++) k[x] /= ww;
    rows.push([xmin, k]);
  }
  return rows;
}

/** Resize a float image (Float32Array h*w) to outW x outH as Pillow does for mode "F" with LANCZOS. */
export function resizeLanczos(src, w, h, outW, outH) {
  const horiz = outW !== w, vert = outH !== h;
  const cv = coefficients(h, outH);
  const first = cv[0][0], last = cv[outH - 1][0] + cv[outH - 1][1].length;
  let img = src, iw = w, ih = h, rowOffset = 0;
  if (horiz) {
    const ch = coefficients(w, outW), rows = last - first, tmp = new Float32Array(outW * rows);
    for (let y = 0; y < rows; y++) {
      for (let xx = 0; xx < outW; xx++) {
        const [xmin, k] = ch[xx];
        let s = 0;
        for (let x = 0; x < k.length; x++) s += src[(y + first) * w + x + xmin] * k[x];
        tmp[y * outW + xx] = s;
      }
    }
    img = tmp; iw = outW; ih = rows; rowOffset = first;
  }
  if (!vert) return img;
  const out = new Float32Array(iw * outH);
  for (let yy = 0; yy < outH; yy++) {
    const [ymin, k] = cv[yy];
    for (let x = 0; x < iw; x++) {
      let s = 0;
      for (let y = 0; y < k.length; y++) s += img[(y + ymin - rowOffset) * iw + x] * k[y];
      out[yy * iw + x] = s;
    }
  }
  return out;
}

// ---- MNIST-style preprocessing -------------------------------------------------------------------------------

const INK_THRESHOLD = 0.05;

/** Python's round(): half to even, as an integer. */
const pyRound = (v) => rint(v);

/**
 * The pad's bytes (size*size, ink bright) -> {image: Uint8Array out*out, empty, steps: {crop, scaled}} as
 * core.draw.preprocess.preprocess_digit(image, size=out, box=box).
 */
export function preprocessDigit(bytes, size, out = 28, box = 20) {
  const grey = new Float32Array(bytes.length);
  let top = size, bottom = -1, left = size, right = -1;
  for (let i = 0; i < bytes.length; i++) {
    const g = (grey[i] = Math.fround(bytes[i] / 255));
    if (g > INK_THRESHOLD) {
      const y = (i / size) | 0, x = i - y * size;
      if (y < top) top = y;
      if (y > bottom) bottom = y;
      if (x < left) left = x;
      if (x > right) right = x;
    }
  }
  if (bottom < 0) return { image: new Uint8Array(out * out), empty: true, steps: {} };
  const cw = right - left + 1, chh = bottom - top + 1;
  const crop = new Float32Array(cw * chh);
  for (let y = 0; y < chh; y++) for (let x = 0; x < cw; x++) crop[y * cw + x] = grey[(y + top) * size + x + left];
  const scale = box / Math.max(cw, chh);
  const w = Math.max(1, pyRound(cw * scale)), h = Math.max(1, pyRound(chh * scale));
  const scaled = resizeLanczos(crop, cw, chh, w, h);
  for (let i = 0; i < scaled.length; i++) scaled[i] = Math.min(Math.max(scaled[i], 0), 1);
  const t0 = Math.floor((out - h) / 2), l0 = Math.floor((out - w) / 2);
  const bytes8 = new Uint8Array(w * h);  // the centre of mass of the bytes the model will see, in whole numbers
  let total = 0, sy = 0, sx = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = (bytes8[y * w + x] = rint(Math.fround(scaled[y * w + x] * 255)));
      total += v; sy += v * (y + t0); sx += v * (x + l0);
    }
  }
  total = Math.max(total, 1);
  let dy = pyRound((out - 1) / 2 - sy / total), dx = pyRound((out - 1) / 2 - sx / total);
  dy = Math.min(Math.max(dy, -t0), out - t0 - h);
  dx = Math.min(Math.max(dx, -l0), out - l0 - w);
  const image = new Uint8Array(out * out);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) image[(y + t0 + dy) * out + x + l0 + dx] = bytes8[y * w + x];
  return { image, empty: false, steps: { crop: { data: crop, w: cw, h: chh }, scaled: { data: scaled, w, h } } };
}

// ---- the model -----------------------------------------------------------------------------------------------

/** ONNX Runtime Web (WASM, one thread) from `ortBase` (a folder URL holding ort.wasm.min.mjs and its .wasm). */
export async function loadRuntime(ortBase) {
  if (typeof WebAssembly !== "object") throw new Error("this browser has no WebAssembly");
  const ort = await import(new URL("ort.wasm.min.mjs", ortBase).href);
  ort.env.wasm.wasmPaths = ortBase;
  ort.env.wasm.numThreads = 1;
  ort.env.logLevel = "error";
  return ort;
}

export class LiveModel {
  /** meta: {mean, std, class_names, temperature?, threshold?} from the model's card. */
  static async load(ort, modelUrl, meta) {
    const session = await ort.InferenceSession.create(modelUrl, { executionProviders: ["wasm"] });
    return new LiveModel(ort, session, meta);
  }

  constructor(ort, session, meta) {
    Object.assign(this, { ort, session, meta, input: session.inputNames[0] });
  }

  /** image: Uint8Array 28*28 -> {logits, probs (calibrated when the card has a temperature), top, energy, known}. */
  async predict(image, side = 28) {
    const { mean, std, temperature, threshold } = this.meta;
    const x = new Float32Array(image.length);
    for (let i = 0; i < image.length; i++) x[i] = (Math.fround(image[i] / 255) - mean[0]) / std[0];
    const feeds = { [this.input]: new this.ort.Tensor("float32", x, [1, 1, side, side]) };
    const logits = Array.from((await this.session.run(feeds))[this.session.outputNames[0]].data);
    const t = temperature || 1, top = Math.max(...logits);
    const exps = logits.map((v) => Math.exp((v - top) / t)), sum = exps.reduce((a, b) => a + b, 0);
    const energy = top + Math.log(logits.reduce((a, v) => a + Math.exp(v - top), 0));
    return { logits, probs: exps.map((e) => e / sum), top: logits.indexOf(top), energy,
             known: threshold == null || energy >= threshold };
  }
}

// ---- what the pad shows --------------------------------------------------------------------------------------

/** Bars of the class probabilities into `root` (created once, then updated in place: no layout work per move). */
export function showBars(root, classes, result, note = "") {
  if (!root.__bars) {
    root.innerHTML = `<div class="live-head"><span class="live-label"></span><span class="live-note"></span></div>` +
      classes.map((c) => `<div class="live-row"><span class="live-class">${String(c).replace(/[<&>"]/g, "")}</span>` +
        `<span class="live-track"><span class="live-bar"></span></span><span class="live-value"></span></div>`).join("");
    root.__bars = { label: root.querySelector(".live-label"), note: root.querySelector(".live-note"),
                    bars: [...root.querySelectorAll(".live-bar")], values: [...root.querySelectorAll(".live-value")] };
  }
  const b = root.__bars;
  if (!result) {
    b.label.textContent = "";
    b.note.textContent = note;
    b.bars.forEach((bar, i) => { bar.style.width = "0%"; b.values[i].textContent = ""; });
    return;
  }
  const p = result.probs, top = result.top;
  b.label.textContent = result.known ? `${classes[top]} · ${(100 * p[top]).toFixed(1)} %` : `none of these (nearest ${classes[top]})`;
  b.note.textContent = note;
  p.forEach((v, i) => {
    b.bars[i].style.width = `${(100 * v).toFixed(1)}%`;
    b.bars[i].classList.toggle("live-top", i === top);
    b.values[i].textContent = `${(100 * v).toFixed(1)}`;
  });
}
