"""The app's stylesheet, inlined in the page (no asset files to package) and the index page."""

from __future__ import annotations

_BREAKPOINTS = (("", None), ("sm", 600), ("md", 960), ("lg", 1264), ("xl", 1904))


def _grid() -> str:
    """Vuetify/Bootstrap column classes (``col-12 col-md-6``): Hiplot's only layout tool."""
    lines = [".hs-row{display:flex;flex-wrap:wrap;margin:0 -8px}",
             ".hs-col{box-sizing:border-box;padding:6px 8px;flex:0 0 100%;max-width:100%}"]
    for name, width in _BREAKPOINTS:
        infix = f"-{name}" if name else ""
        rules = [f".hs-col.col{infix}-{n}{{flex:0 0 {n / 12 * 100:.4f}%;max-width:{n / 12 * 100:.4f}%}}"
                 for n in range(1, 13)]
        rules.append(f".hs-col.col{infix}{{flex:1 0 0;max-width:100%}}")
        block = "".join(rules)
        lines.append(block if width is None else f"@media (min-width:{width}px){{{block}}}")
    return "\n".join(lines)


CSS = """
:root{--hs-accent:#1864ab;--hs-border:#dee2e6;--hs-muted:#6c757d;--hs-bad:#c92a2a;--hs-good:#2b8a3e}
*{box-sizing:border-box}
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans CJK SC",sans-serif;
     color:#212529;background:#f8f9fa;font-size:15px}
a{color:var(--hs-accent)}
.hs-header{display:flex;align-items:center;gap:18px;padding:10px 20px;background:#fff;border-bottom:1px solid var(--hs-border);flex-wrap:wrap}
.hs-brand{font-weight:700;font-size:20px;text-decoration:none;color:#212529}
.hs-nav{display:flex;gap:14px;flex:1;flex-wrap:wrap}
.hs-nav a{text-decoration:none}
.hs-user{color:var(--hs-muted)}
.hs-main{max-width:1200px;margin:0 auto;padding:20px}
.hs-btn,.hs-btn-small{border:1px solid var(--hs-border);background:#fff;border-radius:6px;padding:7px 14px;cursor:pointer;font:inherit}
.hs-btn-small{padding:3px 10px;font-size:13px}
.hs-btn:disabled{opacity:.5;cursor:not-allowed}
.hs-primary{background:var(--hs-accent);border-color:var(--hs-accent);color:#fff}
.hs-link-btn{background:none;border:none;color:var(--hs-accent);cursor:pointer;padding:0;font:inherit}
.hs-input,.hs-code{width:100%;padding:6px 8px;border:1px solid var(--hs-border);border-radius:6px;font:inherit;background:#fff}
.hs-code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px;min-height:120px}
.hs-label{display:block;font-weight:600;margin-bottom:4px;font-size:14px}
.hs-error{color:var(--hs-bad);font-size:13px}
.hs-error ul{margin:4px 0 0;padding-left:18px}
.hs-form-errors{color:var(--hs-bad);margin:10px 0}
.hs-error-title{font-weight:600}
.hs-group{border:1px solid var(--hs-border);border-radius:8px;background:#fff;margin:0 0 16px;padding:8px 16px 12px}
.hs-group legend{font-weight:700;padding:0 6px}
.hs-actions{display:flex;gap:10px;margin:12px 0}
.hs-note{background:#fff3bf;border-radius:6px;padding:8px 12px;margin:8px 0}
.hs-problem{background:#fff5f5;border:1px solid #ffc9c9;border-radius:6px;padding:8px 12px;color:var(--hs-bad)}
.hs-problems li{margin:4px 0}
.hs-pointer{font-family:ui-monospace,monospace;background:#f1f3f5;border-radius:4px;padding:0 4px;margin:0 6px}
.hs-file-name{font-family:ui-monospace,monospace;color:var(--hs-muted)}
.hs-color{display:flex;gap:8px;align-items:center}
.hs-swatch{display:inline-block;width:28px;height:28px;border-radius:6px;border:1px solid var(--hs-border);flex:0 0 28px}
.hs-switch label{display:flex;gap:8px;align-items:center;font-weight:600}
.hs-drop{border:2px dashed var(--hs-border);border-radius:8px;padding:12px;text-align:center;cursor:pointer;background:#fff}
.hs-drop-inline{display:inline-block;padding:3px 10px;font-size:13px}
.hs-toolbar{display:flex;gap:8px;flex-wrap:wrap;margin-bottom:6px;align-items:center}
.hs-paste summary{cursor:pointer;color:var(--hs-muted);font-size:13px;margin:6px 0}
.hs-cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(280px,1fr));gap:16px}
.hs-card{background:#fff;border:1px solid var(--hs-border);border-radius:10px;padding:14px 16px;display:flex;flex-direction:column;gap:6px}
.hs-card h3{margin:0;font-size:17px}
.hs-card.hs-invalid{border-color:#ffa8a8;background:#fff5f5}
.hs-tag{display:inline-block;background:#e7f5ff;color:var(--hs-accent);border-radius:10px;padding:1px 8px;margin:0 4px 4px 0;font-size:12px}
.hs-badge{display:inline-block;border-radius:10px;padding:1px 9px;font-size:12px;font-weight:600;background:#e9ecef}
.hs-badge-invalid,.hs-badge-failed{background:#ffe3e3;color:var(--hs-bad)}
.hs-badge-warning{background:#fff4d6;color:#8a5a00;cursor:pointer}
.hs-badge-succeeded{background:#d3f9d8;color:var(--hs-good)}
.hs-badge-running{background:#d0ebff;color:var(--hs-accent)}
.hs-badge-queued,.hs-badge-held,.hs-badge-cancelled{background:#f1f3f5;color:#495057}
.hs-muted{color:var(--hs-muted);font-size:13px}
.hs-filters{display:flex;gap:12px;margin-bottom:16px;flex-wrap:wrap}
.hs-filters>*{flex:1;min-width:220px}
.hs-progress{height:14px;background:#e9ecef;border-radius:7px;overflow:hidden;margin:6px 0}
.hs-progress-bar{height:100%;background:var(--hs-accent);transition:width .4s}
.hs-log{background:#212529;color:#e9ecef;padding:10px;border-radius:8px;max-height:320px;overflow:auto;font-size:12px;white-space:pre-wrap}
.hs-json{background:#fff;border:1px solid var(--hs-border);padding:10px;border-radius:8px;max-height:360px;overflow:auto;font-size:12px}
.hs-tablelist{border-collapse:collapse;width:100%;background:#fff}
.hs-tablelist th,.hs-tablelist td{border-bottom:1px solid var(--hs-border);padding:6px 8px;text-align:left;font-size:14px}
.hs-two{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:16px}
@media (max-width:960px){.hs-two{grid-template-columns:1fr}}
.hs-panel{background:#fff;border:1px solid var(--hs-border);border-radius:8px;padding:12px 16px;margin-bottom:16px}
.hs-panel h3{margin-top:0}
""" + _grid()

INDEX = """<!DOCTYPE html>
<html>
    <head>
        {%metas%}
        <title>{%title%}</title>
        {%favicon%}
        {%css%}
        <style>""" + CSS + """</style>
    </head>
    <body>
        {%app_entry%}
        <footer>
            {%config%}
            {%scripts%}
            {%renderer%}
        </footer>
    </body>
</html>"""
