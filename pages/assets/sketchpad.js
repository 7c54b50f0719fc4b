// CNN Studio's drawing pad (a Streamlit v2 component): white strokes on black, undo and redo, and the strokes
// sent to Python the moment the pen lifts (no debounce), as [{w: width, p: [[x, y], ...]}] in canvas pixels.
// Streamlit calls this function again whenever the data changes (the brush size): the pad and its strokes stay.
// With data.live, the model also runs here, in the browser (static/cnn_studio/live.mjs, ONNX Runtime Web), on
// every pointer move: the bars under the pad follow the pen; window.__cnnLive keeps their timings for tests.
export default function (component) {
  const { parentElement, data, setStateValue } = component;
  const size = data.size;
  let pad = parentElement.__sketch;
  if (!pad) {
    pad = parentElement.__sketch = { strokes: (data.strokes || []).map((s) => ({ w: s.w, p: s.p })), redo: [] };
    const root = document.createElement("div");
    root.className = "sketch";
    root.innerHTML = `<canvas class="sketchpad" width="${size}" height="${size}" aria-label="drawing pad"></canvas>
      <div class="tools"><button class="undo" title="Undo the last stroke">Undo</button>
      <button class="redo" title="Redo">Redo</button></div><div class="live" aria-live="polite"></div>`;
    parentElement.appendChild(root);
    const canvas = root.querySelector("canvas"), ctx = canvas.getContext("2d");
    pad.paint = () => {
      ctx.fillStyle = "#000";
      ctx.fillRect(0, 0, size, size);
      Object.assign(ctx, { strokeStyle: "#fff", lineCap: "round", lineJoin: "round" });
      for (const s of pad.current ? [...pad.strokes, pad.current] : pad.strokes) {
        if (!s.p || !s.p.length) continue;
        ctx.lineWidth = s.w;
        ctx.beginPath();
        ctx.moveTo(s.p[0][0], s.p[0][1]);
        for (const [x, y] of s.p.length > 1 ? s.p.slice(1) : [[s.p[0][0] + 0.01, s.p[0][1]]]) ctx.lineTo(x, y);
        ctx.stroke();
      }
    };
    const at = (e) => {
      const r = canvas.getBoundingClientRect();
      return [Math.round(((e.clientX - r.left) * size) / r.width), Math.round(((e.clientY - r.top) * size) / r.height)];
    };
    const send = () => pad.send("strokes", pad.strokes);  // already {w, p} objects: Streamlit serialises them
    canvas.addEventListener("pointerdown", (e) => {
      canvas.setPointerCapture(e.pointerId);
      pad.current = { w: pad.width, p: [at(e)] };
      pad.paint();
      if (pad.live) pad.live.begin(pad.current, performance.now());
    });
    canvas.addEventListener("pointermove", (e) => {
      if (!pad.current) return;
      const started = e.timeStamp;  // when the browser made the event: the clock of "move -> bars" starts there
      pad.current.p.push(at(e));
      pad.paint();
      if (pad.live) pad.live.extend(pad.current, started);
    });
    const lift = () => {
      if (!pad.current) return;
      pad.strokes.push(pad.current);
      pad.current = null;
      pad.redo = [];
      pad.paint();
      send();
      if (pad.live) pad.live.reset();
    };
    canvas.addEventListener("pointerup", lift);
    canvas.addEventListener("pointercancel", lift);
    root.querySelector(".undo").addEventListener("click", () => {
      if (pad.strokes.length) pad.redo.push(pad.strokes.pop()), pad.paint(), send(), pad.live && pad.live.reset();
    });
    root.querySelector(".redo").addEventListener("click", () => {
      if (pad.redo.length) pad.strokes.push(pad.redo.pop()), pad.paint(), send(), pad.live && pad.live.reset();
    });
    pad.panel = root.querySelector(".live");
  }
  const model = data.live ? data.live.model : null;
  if (model !== (pad.liveModel || null)) {  // a new model (or none): the browser's copy follows the page's choice
    pad.liveModel = model;
    pad.live = null;
    pad.panel.textContent = "";
    if (data.live) startLive(pad, pad.panel, data.live, size);
  }
  pad.width = data.width;
  pad.send = setStateValue;
  pad.paint();
}

// The model in the browser: the committed strokes' ink is kept, the current stroke's segments are added to a copy
// as the pen moves, and one prediction runs at a time (the newest drawing is predicted next, older ones skipped).
async function startLive(pad, panel, spec, size) {
  const state = (window.__cnnLive = { ready: false, error: null, times: [], predictions: 0, last: null });
  panel.textContent = "Loading the model into your browser...";
  let L, model;
  try {
    L = await import(new URL(spec.module, window.location.href).href);
    const ort = await L.loadRuntime(new URL(spec.runtime, window.location.href).href);
    model = await L.LiveModel.load(ort, new URL(spec.model, window.location.href).href, spec);
  } catch (err) {
    state.error = String(err && err.message ? err.message : err);
    panel.textContent = `Live prediction off (${state.error}): the prediction follows each stroke from the server.`;
    return;
  }
  let base = new Float64Array(size * size), work = null, busy = false, queued = null;
  const committed = () => {
    base = new Float64Array(size * size);
    for (const s of pad.strokes) if (s.p && s.p.length) L.inkStroke(base, size, s.p, s.w);
  };
  const run = async (ink, started) => {
    if (busy) { queued = { ink, started: queued ? queued.started : started }; return; }  // oldest unanswered move
    busy = true;
    try {
      const prep = L.preprocessDigit(L.toBytes(ink), size, spec.side, spec.box);
      const result = prep.empty ? null : await model.predict(prep.image, spec.side);
      L.showBars(panel, spec.classes, result, "in your browser");
      state.times.push(performance.now() - started);
      if (state.times.length > 2000) state.times.shift();
      state.predictions += 1;
      state.last = result && { top: result.top, label: String(spec.classes[result.top]), known: result.known,
                               probs: result.probs, input: Array.from(prep.image) };
    } catch (err) {
      state.error = String(err && err.message ? err.message : err);
    }
    busy = false;
    if (queued) { const next = queued; queued = null; run(next.ink, next.started); }
  };
  if (pad.liveModel !== spec.model) return;  // the page chose another model while this one loaded
  pad.live = {
    begin(stroke, started) { work = base.slice(); L.inkStroke(work, size, stroke.p, stroke.w); run(work.slice(), started); },
    extend(stroke, started) {
      const p = stroke.p, n = p.length;
      if (!work) work = base.slice();
      L.inkSegment(work, size, p[n - 2][0], p[n - 2][1], p[n - 1][0], p[n - 1][1], stroke.w / 2);
      run(work.slice(), started);
    },
    reset() { committed(); work = null; run(base.slice(), performance.now()); },
  };
  committed();
  state.ready = true;
  run(base.slice(), performance.now());
}
