"""Verbs that take a model out of the app: `export` (ONNX, or the static share page) and `web-runtime` (ONNX
Runtime Web's files, for the Draw page's in-browser prediction and the share page)."""
from __future__ import annotations

from core.engine.verbs import register_verb


def _export_arguments(parser) -> None:
    parser.add_argument("checkpoint")
    parser.add_argument("--format", choices=["onnx"], default="onnx")
    parser.add_argument("--out", help="the .onnx file to write (default: model.onnx in the current folder)")
    parser.add_argument("--web", metavar="DIR", help="instead: a self-contained folder (index.html, the model, the "
                        "runtime) that any static file server serves")
    parser.add_argument("--data-dir", help="data directory (default: $CNN_STUDIO_DATA or the cache)")


@register_verb("export", "write a classifier, the pair CNN or the CRNN as ONNX (checked against PyTorch in ONNX "
               "Runtime), or as a static web page that runs it in the browser", _export_arguments)
def export(args) -> None:
    from core.models.onnx_export import export_checkpoint

    if args.web:
        from core.web.static_page import write_web_demo

        print(f"wrote {write_web_demo(args.checkpoint, args.web, args.data_dir)}: serve it with "
              f"python -m http.server --directory {args.web}")
        return
    report = export_checkpoint(args.checkpoint, args.out or "model.onnx", args.data_dir)
    print(f"wrote {report['file']} ({report['bytes'] / 1e6:.2f} MB); ONNX Runtime matches PyTorch within "
          f"{report['max_abs_diff']:.2g} on {report['checked_on']}")


def _runtime_arguments(parser) -> None:
    parser.add_argument("--from", dest="tarball", metavar="FILE", help="an onnxruntime-web tarball fetched elsewhere")


@register_verb("web-runtime", "fetch ONNX Runtime Web's files (pinned, hash-checked; no Node needed) into static/ort, "
               "for prediction in the browser while drawing", _runtime_arguments)
def web_runtime(args) -> None:
    from core.web.runtime import VERSION, install_runtime, runtime_ready

    if runtime_ready() and not args.tarball:
        print(f"ONNX Runtime Web {VERSION} is already in static/ort")
        return
    print(f"wrote ONNX Runtime Web {VERSION} to {install_runtime(tarball=args.tarball)}")
