// CNN Studio's drawing pad (a Streamlit v2 component): white strokes on black, undo and redo, and the strokes
// sent to Python the moment the pen lifts (no debounce), as [{w: width, p: [[x, y], ...]}] in canvas pixels.
// Streamlit calls this function again whenever the data changes (the brush size): the pad and its strokes stay.
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
      <button class="redo" title="Redo">Redo</button></div>`;
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
    });
    canvas.addEventListener("pointermove", (e) => {
      if (!pad.current) return;
      pad.current.p.push(at(e));
      pad.paint();
    });
    const lift = () => {
      if (!pad.current) return;
      pad.strokes.push(pad.current);
      pad.current = null;
      pad.redo = [];
      pad.paint();
      send();
    };
    canvas.addEventListener("pointerup", lift);
    canvas.addEventListener("pointercancel", lift);
    root.querySelector(".undo").addEventListener("click", () => {
      if (pad.strokes.length) pad.redo.push(pad.strokes.pop()), pad.paint(), send();
    });
    root.querySelector(".redo").addEventListener("click", () => {
      if (pad.redo.length) pad.strokes.push(pad.redo.pop()), pad.paint(), send();
    });
  }
  pad.width = data.width;
  pad.send = setStateValue;
  pad.paint();
}
