"""The shell of StackBE's few server-rendered pages: one self-contained HTML document,
no external assets, readable on a phone."""

from __future__ import annotations

from html import escape

__all__ = ["page"]

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f7f9;
color:#1a1d23}main{max-width:28rem;margin:12vh auto;padding:2rem;background:#fff;
border-radius:12px;box-shadow:0 1px 3px rgba(0,0,0,.12)}h1{font-size:1.4rem;margin-top:0}
button{font:inherit;padding:.7rem 1.4rem;border:0;border-radius:8px;background:#3b5bdb;
color:#fff;cursor:pointer}button:focus,a:focus{outline:3px solid #91a7ff;outline-offset:2px}
code{display:block;word-break:break-all;background:#f1f3f5;padding:.6rem;border-radius:6px;
font-size:.8rem}dl{display:grid;grid-template-columns:auto 1fr;gap:.4rem 1rem}dt{color:#5c6370}
dd{margin:0}.actions{display:flex;gap:1rem;align-items:center;flex-wrap:wrap}
"""


def page(title: str, body: str) -> str:
    """A whole page; ``body`` is trusted HTML, so escape what goes into it."""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )
